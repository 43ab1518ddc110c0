import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
import WeftCore
import WeftProxy

/// What a test backend does with one request.
enum BackendReply: Sendable {
    /// Answers with `status` and the body `tag` (or the request body with `echo`), chunked if asked.
    case answer(HTTPResponseStatus, echo: Bool = false, chunked: Bool = false)
    /// Closes the connection without answering.
    case close
    /// Answers 200 after `delay`.
    case delayed(TimeAmount)
}

/// An HTTP/1.1 test backend handler: keep-alive, answers each request as `behavior` says, given the
/// request and how many requests this connection served before it. Responses carry `x-backend: tag`.
final class TestHTTPBackend: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let tag: String
    let behavior: @Sendable (HTTPRequestHead, Int) -> BackendReply
    let served: Counter
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var onThisConnection = 0

    init(tag: String, served: Counter, behavior: @escaping @Sendable (HTTPRequestHead, Int) -> BackendReply) {
        self.tag = tag
        self.behavior = behavior
        self.served = served
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let reply = behavior(head, onThisConnection)
            onThisConnection += 1
            switch reply {
            case .close:
                context.close(promise: nil)
            case .answer(let status, let echo, let chunked):
                served.add()
                respond(context: context, status: status, body: echo ? body : ByteBuffer(string: tag), chunked: chunked)
            case .delayed(let delay):
                let body = ByteBuffer(string: tag)
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: delay) {
                    let (handler, context) = loopBound.value
                    handler.served.add()
                    handler.respond(context: context, status: .ok, body: body, chunked: false)
                }
            }
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: ByteBuffer, chunked: Bool) {
        var headers = HTTPHeaders([("x-backend", tag)])
        if chunked {
            headers.add(name: "transfer-encoding", value: "chunked")
        } else {
            headers.add(name: "content-length", value: String(body.readableBytes))
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if chunked {
            // Several chunks, so the proxy has to pass on a streamed body.
            var rest = body
            while rest.readableBytes > 0, let slice = rest.readSlice(length: min(rest.readableBytes, 7)) {
                context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
            }
        } else if body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// A test backend server and how many responses it sent.
final class HTTPBackendServer: Sendable {
    let channel: any Channel
    let port: Int
    let served: Counter

    init(channel: any Channel, served: Counter) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.served = served
    }
}

/// A response as the test client saw it.
struct ClientResponse {
    var head: HTTPResponseHead
    var body: String
    var backend: String? { head.headers.first(name: "x-backend") }
}

/// An HTTP/1.1 keep-alive client connection for tests: one request at a time.
final class TestHTTPClient {
    private let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    init(group: any EventLoopGroup, port: Int) async throws {
        channel = try await ClientBootstrap(group: group)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        inbound = channel.inbound.makeAsyncIterator()
        outbound = channel.outbound
    }

    /// Sends one request (the body in `chunks` parts, chunked when there is more than one unless a
    /// content-length is given) and reads its response.
    func send(_ method: HTTPMethod = .GET, _ uri: String = "/", headers: [(String, String)] = [], chunks: [String] = []) async throws -> ClientResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("host", "test")] + headers))
        if !chunks.isEmpty, head.headers["content-length"].isEmpty { head.headers.add(name: "transfer-encoding", value: "chunked") }
        try await outbound.write(.head(head))
        for chunk in chunks { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: chunk)))) }
        try await outbound.write(.end(nil))
        var response: HTTPResponseHead?
        var body = ""
        while let part = try await inbound.next() {
            switch part {
            case .head(let h): response = h
            case .body(var b): body += b.readString(length: b.readableBytes) ?? ""
            case .end: return ClientResponse(head: response!, body: body)
            }
        }
        throw ChannelError.eof
    }

    func close() async { try? await channel.channel.close() }
}

/// Event loops, HTTP backends and a proxy; everything is closed whether the test passes or not.
final class HTTPFixture: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let proxy: NodeProxy
    private let servers = Mutex<[any Channel]>([])

    init() {
        proxy = NodeProxy(group: group, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func run(_ body: (HTTPFixture) async throws -> Void) async throws {
        let fixture = HTTPFixture()
        var failure: (any Error)?
        do { try await body(fixture) } catch { failure = error }
        await fixture.proxy.shutdown()
        for channel in fixture.servers.withLock({ $0 }) { try? await channel.close() }
        try? await fixture.group.shutdownGracefully()
        if let failure { throw failure }
    }

    func backend(_ tag: String, behavior: @escaping @Sendable (HTTPRequestHead, Int) -> BackendReply = { _, _ in .answer(.ok) }) async throws -> HTTPBackendServer {
        let served = Counter()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(TestHTTPBackend(tag: tag, served: served, behavior: behavior))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        servers.withLock { $0.append(channel) }
        return HTTPBackendServer(channel: channel, served: served)
    }

    /// Closes `channel` (a server a test started) with the fixture.
    func adopt(_ channel: any Channel) {
        servers.withLock { $0.append(channel) }
    }

    func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    /// Applies one `http` listener on a free port and returns the port.
    func listen(_ backends: [(HTTPBackendServer, String?)], policy: LoadBalancerPolicy = .roundRobin, http: HTTPRouteSettings? = nil,
                split: [TrafficWeight]? = nil, service: String? = "default/web") async throws -> Int {
        // A port found free can be taken by a parallel test before the listener binds it; the proxy
        // then refuses it (address already in use) and another one is tried.
        var attempt = 0
        while true {
            attempt += 1
            let port = try await freePort()
            do {
                try await proxy.apply(ProxyConfiguration(listeners: [
                    ListenerConfiguration(
                        name: "web", address: "127.0.0.1", port: port, loadBalancer: policy,
                        backends: backends.map { BackendConfiguration(address: "127.0.0.1", port: $0.0.port, revision: $0.1) },
                        protocol: .http, http: http, split: split, service: service),
                ]))
                return port
            } catch let error as ProxyConfigurationError where attempt < 5 && error.description.contains("address already in use") {
                continue
            }
        }
    }

    func client(_ port: Int) async throws -> TestHTTPClient { try await TestHTTPClient(group: group, port: port) }
}

/// A counter shared by a test backend's connections.
final class Counter: Sendable {
    private let atomic = Atomic(0)
    func add() { atomic.add(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

@Suite("NodeProxy in HTTP mode on loopback sockets", .timeLimit(.minutes(2)))
struct HTTPProxyTests {
    @Test func balancesEachRequestOfOneKeepAliveConnection() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.backend("a"), b = try await f.backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let client = try await f.client(port)
            var seen: [String: Int] = [:]
            for _ in 0..<10 {
                let response = try await client.send()
                #expect(response.head.status == .ok)
                #expect(response.body == response.backend)
                seen[response.backend ?? "?", default: 0] += 1
            }
            await client.close()
            #expect(seen == ["a": 5, "b": 5])
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.connectionsTotal == 1)
            #expect(counters.http.requestsTotal == 10)
            // Pooled: one upstream connection per backend on the client's loop.
            #expect(counters.backends.map(\.connectionsTotal) == [1, 1])
        }
    }

    @Test func splitsRequestsByRevisionWeight() async throws {
        try await HTTPFixture.run { f in
            let stable1 = try await f.backend("stable"), stable2 = try await f.backend("stable"), canary = try await f.backend("canary")
            let port = try await f.listen([(stable1, "s"), (stable2, "s"), (canary, "c")],
                                          split: [TrafficWeight(revision: "s", weight: 90), TrafficWeight(revision: "c", weight: 10)])
            let clients = [try await f.client(port), try await f.client(port)]
            var canaryCount = 0
            let total = 2_000
            for i in 0..<total {
                let response = try await clients[i % 2].send()
                if response.backend == "canary" { canaryCount += 1 }
            }
            for client in clients { await client.close() }
            // Sequential requests: smooth weighted round-robin over revisions is exact.
            #expect(abs(canaryCount - total / 10) <= total / 100)
            let samples = f.proxy.trafficSamples().sorted { $0.revision < $1.revision }
            #expect(samples.map(\.revision) == ["c", "s"])
            #expect(samples.map(\.requests) == [canaryCount, total - canaryCount])
            #expect(samples.allSatisfy { $0.service == "default/web" && $0.port == port && $0.latency.count == UInt64($0.requests) })
            #expect(samples.map { $0.responses[1] } == [canaryCount, total - canaryCount])
        }
    }

    @Test func withoutAUsableCanaryEverythingGoesToTheOthers() async throws {
        try await HTTPFixture.run { f in
            let stable = try await f.backend("stable")
            let port = try await f.listen([(stable, "s")],
                                          split: [TrafficWeight(revision: "s", weight: 50), TrafficWeight(revision: "c", weight: 50)])
            let client = try await f.client(port)
            for _ in 0..<10 { #expect(try await client.send().backend == "stable") }
            await client.close()
        }
    }

    @Test func retriesWhenAPooledConnectionWasClosedByTheBackend() async throws {
        try await HTTPFixture.run { f in
            // Every connection serves one request, then closes when the next one arrives: what a
            // pooled connection looks like when the backend closed it just as the proxy reused it.
            let only = try await f.backend("only") { _, served in served == 0 ? .answer(.ok) : .close }
            let port = try await f.listen([(only, nil)])
            let client = try await f.client(port)
            for _ in 0..<5 { #expect(try await client.send().head.status == .ok) }
            await client.close()
            let backend = try #require(f.proxy.counters().first?.backends.first)
            #expect(backend.retries == 4)
            #expect(backend.requestFailures == 4)
            #expect(backend.responses[1] == 5)
        }
    }

    @Test func retriesA503OnAnotherBackend() async throws {
        try await HTTPFixture.run { f in
            let draining = try await f.backend("draining") { _, _ in .answer(.serviceUnavailable) }
            let healthy = try await f.backend("healthy")
            let port = try await f.listen([(draining, "old"), (healthy, "new")])
            let client = try await f.client(port)
            for _ in 0..<10 {
                let response = try await client.send(.GET)
                #expect(response.head.status == .ok)
                #expect(response.backend == "healthy")
            }
            await client.close()
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.backends[0].responses[4] == 5)
            #expect(counters.backends[1].retries == 5)
            let samples = Dictionary(uniqueKeysWithValues: f.proxy.trafficSamples().map { ($0.revision, $0) })
            #expect(samples["old"]?.serverErrors == 5)
            #expect(samples["new"]?.retries == 5)
        }
    }

    @Test func doesNotRetryAPost() async throws {
        try await HTTPFixture.run { f in
            let draining = try await f.backend("draining") { _, _ in .answer(.serviceUnavailable) }
            let healthy = try await f.backend("healthy")
            let port = try await f.listen([(draining, nil), (healthy, nil)])
            let client = try await f.client(port)
            var statuses: [UInt] = []
            for _ in 0..<4 { statuses.append(try await client.send(.POST, headers: [("content-length", "2")], chunks: ["hi"]).head.status.code) }
            await client.close()
            #expect(statuses.sorted() == [200, 200, 503, 503])
            #expect(f.proxy.counters().first?.backends.map(\.retries) == [0, 0])
        }
    }

    @Test func anExhaustedBudgetStopsRetries() async throws {
        try await HTTPFixture.run { f in
            let draining = try await f.backend("draining") { _, _ in .answer(.serviceUnavailable) }
            let healthy = try await f.backend("healthy")
            let port = try await f.listen([(draining, nil), (healthy, nil)],
                                          http: HTTPRouteSettings(retries: RetryPolicy(attempts: 2, budgetPercent: 0, minRetriesPerSecond: 0)))
            let client = try await f.client(port)
            var unavailable = 0
            for _ in 0..<6 where try await client.send().head.status == .serviceUnavailable { unavailable += 1 }
            await client.close()
            #expect(unavailable == 3)
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.http.retriesRefused == 3)
            #expect(counters.backends.map(\.retries) == [0, 0])
        }
    }

    @Test func aSlowBackendGets504() async throws {
        try await HTTPFixture.run { f in
            let slow = try await f.backend("slow") { _, _ in .delayed(.seconds(3)) }
            let port = try await f.listen([(slow, nil)], http: HTTPRouteSettings(timeoutMs: 200))
            let client = try await f.client(port)
            let response = try await client.send()
            #expect(response.head.status == .gatewayTimeout)
            #expect(response.head.headers.first(name: "x-weft-proxy") == "timeout")
            #expect(response.body.contains("no response within"))
            await client.close()
            #expect(f.proxy.counters().first?.http.timedOut == 1)
            #expect(f.proxy.counters().first?.backends.first?.requestFailures == 1)
        }
    }

    @Test func noBackendGets503AndAllAttemptsFailedGets502() async throws {
        try await HTTPFixture.run { f in
            let port = try await f.listen([])
            let client = try await f.client(port)
            let response = try await client.send()
            #expect(response.head.status == .serviceUnavailable)
            #expect(response.head.headers.first(name: "x-weft-proxy") == "no-backend")
            // The connection stays usable after the proxy's own answer.
            #expect(try await client.send().head.status == .serviceUnavailable)
            await client.close()

            let gone = try await f.freePort()
            let deadPort = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(name: "dead", address: "127.0.0.1", port: deadPort,
                                      backends: [BackendConfiguration(address: "127.0.0.1", port: gone)], protocol: .http),
            ]))
            let second = try await f.client(deadPort)
            let failed = try await second.send()
            #expect(failed.head.status == .badGateway)
            #expect(failed.head.headers.first(name: "x-weft-proxy") == "upstream-failed")
            await second.close()
        }
    }

    @Test func aMalformedRequestGets400AndTheProxyKeepsServing() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.backend("a")
            let port = try await f.listen([(a, nil)])
            let raw = try await ClientBootstrap(group: f.group)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            let reply = try await raw.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"))
                var received = ""
                for try await var chunk in inbound { received += chunk.readString(length: chunk.readableBytes) ?? "" }
                return received
            }
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            #expect(reply.lowercased().contains("x-weft-proxy: malformed-request"))
            let client = try await f.client(port)
            #expect(try await client.send().head.status == .ok)
            await client.close()
            #expect(f.proxy.counters().first?.http.malformed == 1)
        }
    }

    @Test func chunkedBodiesPassIntactBothWays() async throws {
        try await HTTPFixture.run { f in
            let echo = try await f.backend("echo") { _, _ in .answer(.ok, echo: true, chunked: true) }
            let port = try await f.listen([(echo, nil)])
            let client = try await f.client(port)
            let parts = (0..<20).map { "part \($0) " + String(repeating: "x", count: $0 * 50) + "\n" }
            let response = try await client.send(.POST, "/upload", chunks: parts)
            #expect(response.head.status == .ok)
            #expect(response.body == parts.joined())
            #expect(response.head.headers.first(name: "transfer-encoding") == "chunked")
            // And with content-length framing on the same connection.
            let fixed = try await client.send(.PUT, headers: [("content-length", "11")], chunks: ["hello", " world"])
            #expect(fixed.body == "hello world")
            await client.close()
        }
    }

    @Test func aRemovedBackendTakesNoNewRequests() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.backend("a"), b = try await f.backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let client = try await f.client(port)
            _ = try await client.send()
            _ = try await client.send()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(name: "web", address: "127.0.0.1", port: port, loadBalancer: .roundRobin,
                                      backends: [BackendConfiguration(address: "127.0.0.1", port: b.port)], protocol: .http),
            ]))
            for _ in 0..<4 { #expect(try await client.send().backend == "b") }
            await client.close()
            #expect(a.served.value == 1)
        }
    }

    @Test func aRequestInFlightFinishesWhenItsBackendIsRemoved() async throws {
        try await HTTPFixture.run { f in
            let slow = try await f.backend("slow") { _, _ in .delayed(.milliseconds(400)) }
            let fast = try await f.backend("fast")
            let port = try await f.listen([(slow, nil)])
            async let inFlight: ClientResponse = {
                let client = try await f.client(port)
                let response = try await client.send()
                await client.close()
                return response
            }()
            // Once the request is on its way to the slow backend (not after a fixed sleep: a loaded
            // machine may not have sent it yet), the backend is replaced.
            let sent = ContinuousClock.now
            while f.proxy.counters().first?.backends.first?.connectionsActive != 1, ContinuousClock.now - sent < .seconds(10) {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(name: "web", address: "127.0.0.1", port: port,
                                      backends: [BackendConfiguration(address: "127.0.0.1", port: fast.port)], protocol: .http),
            ]))
            let response = try await inFlight
            #expect(response.head.status == .ok && response.backend == "slow")
            let client = try await f.client(port)
            #expect(try await client.send().backend == "fast")
            await client.close()
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.backends.map(\.id) == ["127.0.0.1:\(fast.port)"])
        }
    }

    @Test func tcpListenersSplitConnectionsByRevision() async throws {
        try await SocketFixture.run { f in
            var backends: [(any Channel, Int)] = []
            for tag in ["s0", "s1", "c0"] { backends.append(try await f.startBackend(tag)) }
            defer { for (channel, _) in backends { channel.close(promise: nil) } }
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(
                    name: "tcp", address: "127.0.0.1", port: port, loadBalancer: .roundRobin,
                    backends: [
                        BackendConfiguration(address: "127.0.0.1", port: backends[0].1, revision: "s"),
                        BackendConfiguration(address: "127.0.0.1", port: backends[1].1, revision: "s"),
                        BackendConfiguration(address: "127.0.0.1", port: backends[2].1, revision: "c"),
                    ],
                    split: [TrafficWeight(revision: "s", weight: 75), TrafficWeight(revision: "c", weight: 25)]),
            ]))
            var tags: [String: Int] = [:]
            for _ in 0..<40 {
                let reply = try await f.exchange(port, "x")
                tags[String(reply.prefix(2)), default: 0] += 1
            }
            #expect(tags == ["s0": 15, "s1": 15, "c0": 10])
        }
    }
}

@Suite("HTTP mode: pipelining and HTTP/1.0", .timeLimit(.minutes(1)))
struct HTTPPipeliningTests {
    /// Sends raw bytes, half-closes, and returns everything until the proxy closes.
    func raw(_ f: HTTPFixture, _ port: Int, _ text: String) async throws -> String {
        let channel = try await ClientBootstrap(group: f.group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: text))
            outbound.finish()
            var received = ""
            for try await var chunk in inbound { received += chunk.readString(length: chunk.readableBytes) ?? "" }
            return received
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.backend("a"), b = try await f.backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let requests = (0..<6).map { "GET /\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
            let reply = try await raw(f, port, requests)
            // Six responses, alternating backends (round robin per request), then the connection closes
            // because the client half-closed after its last request.
            let statuses = reply.components(separatedBy: "HTTP/1.1 200 OK").count - 1
            #expect(statuses == 6)
            let bodies = reply.components(separatedBy: "\r\n\r\n").dropFirst().map { String($0.prefix(1)) }
            #expect(Array(bodies) == ["a", "b", "a", "b", "a", "b"])
        }
    }

    @Test func anHTTP10ClientGetsOneResponseAndAClose() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.backend("a")
            let port = try await f.listen([(a, nil)])
            let channel = try await ClientBootstrap(group: f.group)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            let reply = try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
                var received = ""
                for try await var chunk in inbound { received += chunk.readString(length: chunk.readableBytes) ?? "" }
                return received
            }
            #expect(reply.hasPrefix("HTTP/1.0 200 OK"))
            #expect(reply.lowercased().contains("connection: close"))
            #expect(reply.hasSuffix("\r\n\r\na"))
        }
    }
}
