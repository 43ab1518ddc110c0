import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization
import Testing
import WeftCore
@testable import WeftProxy

/// An h2c test backend stream: answers with `x-backend: tag`, the request body, and trailers
/// (`grpc-status: 0`, `x-backend-trailer: tag`, and the request's `x-client-trailer` echoed). A request
/// to `/slow` is answered after two seconds, one to `/wait` after 300 ms.
final class H2EchoStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let tag: String
    let served: Counter
    private var request = HPACKHeaders()
    private var trailer: String?
    private var body = ByteBuffer()

    init(tag: String, served: Counter) {
        self.tag = tag
        self.served = served
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var ended = false
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if request.isEmpty { request = headers.headers } else { trailer = headers.headers.first(name: "x-client-trailer") }
            ended = headers.endStream
        case .data(let data):
            if case .byteBuffer(var bytes) = data.data { body.writeBuffer(&bytes) }
            ended = data.endStream
        default:
            break
        }
        guard ended else { return }
        let delay: TimeAmount? = switch request.first(name: ":path") {
        case "/slow": .seconds(2)
        case "/wait": .milliseconds(300)
        default: nil
        }
        if let delay {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: delay) { bound.value.0.respond(context: bound.value.1) }
        } else {
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }  // reset meanwhile: nothing served
        served.add()
        let type = request.first(name: "content-type") ?? "application/octet-stream"
        context.write(wrapOutboundOut(.headers(.init(headers: HPACKHeaders([
            (":status", "200"), ("x-backend", tag), ("content-type", type),
            ("x-method", request.first(name: ":method") ?? ""), ("x-path", request.first(name: ":path") ?? ""),
            ("x-authority", request.first(name: ":authority") ?? ""),
        ])))), promise: nil)
        // Two DATA frames, so the proxy passes a streamed body.
        var rest = body
        let first = rest.readSlice(length: rest.readableBytes / 2)!
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(first)))), promise: nil)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(rest)))), promise: nil)
        var trailers = HPACKHeaders([("grpc-status", "0"), ("x-backend-trailer", tag)])
        if let trailer { trailers.add(name: "x-client-trailer", value: trailer) }
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
    }
}

/// A response as the HTTP/2 test client saw it.
struct H2Response: Sendable {
    var headers: HPACKHeaders
    var body: String
    var trailers: HPACKHeaders?
    var status: String? { headers.first(name: ":status") }
    var backend: String? { headers.first(name: "x-backend") }
}

/// Collects one response on a client stream.
final class H2ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload

    private let promise: EventLoopPromise<H2Response>
    private var headers: HPACKHeaders?
    private var trailers: HPACKHeaders?
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<H2Response>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var ended = false
        switch unwrapInboundIn(data) {
        case .headers(let h):
            if headers == nil { headers = h.headers } else { trailers = h.headers }
            ended = h.endStream
        case .data(let d):
            if case .byteBuffer(var bytes) = d.data { body.writeBuffer(&bytes) }
            ended = d.endStream
        default:
            break
        }
        if ended, let headers {
            promise.succeed(H2Response(headers: headers, body: String(buffer: body), trailers: trailers))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)  // no-op when the response was complete
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

/// An h2c (prior knowledge) client connection: each request on its own stream.
struct H2TestClient: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer

    static func connect(group: any EventLoopGroup, port: Int) async throws -> H2TestClient {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { $0.close() }
                return H2TestClient(channel: channel, multiplexer: multiplexer)
            }
        }
    }

    func send(path: String = "/", headers: [(String, String)] = [], body: [String] = [], trailers: [(String, String)]? = nil) async throws -> H2Response {
        let promise = channel.eventLoop.makePromise(of: H2Response.self)
        let stream: any Channel
        do {
            stream = try await multiplexer.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(H2ResponseCollector(promise: promise)) }
            }.get()
        } catch {
            promise.fail(error)  // no stream, no collector: the promise must not leak
            throw error
        }
        let head = HPACKHeaders([(":method", "POST"), (":path", path), (":scheme", "http"), (":authority", "web.test")] + headers)
        stream.write(HTTP2Frame.FramePayload.headers(.init(headers: head, endStream: body.isEmpty && trailers == nil)), promise: nil)
        for (i, part) in body.enumerated() {
            let last = i == body.count - 1 && trailers == nil
            stream.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: part)), endStream: last)), promise: nil)
        }
        if let trailers {
            stream.write(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders(trailers), endStream: true)), promise: nil)
        }
        stream.flush()
        return try await promise.futureResult.get()
    }

    /// Opens a stream with a request for `path`, then resets it after `delay` without waiting for a response.
    func sendAndReset(path: String, after delay: TimeAmount) async throws {
        let stream = try await multiplexer.createStreamChannel { $0.eventLoop.makeSucceededVoidFuture() }.get()
        let head = HPACKHeaders([(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "web.test")])
        try await stream.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: head, endStream: true)))
        try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
        // Closing an open stream resets it (RST_STREAM CANCEL); its close future reports that.
        try? await stream.close()
    }

    func close() async { try? await channel.close() }
}

extension HTTPFixture {
    /// Applies the `web` listener on `port` again with `backends`.
    @discardableResult
    func listen(port: Int, _ backends: [(HTTPBackendServer, String?)]) async throws -> Int {
        try await proxy.apply(ProxyConfiguration(listeners: [
            ListenerConfiguration(
                name: "web", address: "127.0.0.1", port: port, loadBalancer: .roundRobin,
                backends: backends.map { BackendConfiguration(address: "127.0.0.1", port: $0.0.port, revision: $0.1) },
                protocol: .http, service: "default/web"),
        ]))
        return port
    }

    /// An h2c echo backend (`H2EchoStream`) that allows `maxStreams` concurrent streams per connection.
    func h2Backend(_ tag: String, maxStreams: Int = 100) async throws -> HTTPBackendServer {
        let served = Counter()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                    configuration.initialSettings = [
                        HTTP2Setting(parameter: .maxConcurrentStreams, value: maxStreams),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: 16384),
                    ]
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .server, connectionConfiguration: configuration, streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(H2EchoStream(tag: tag, served: served))
                        }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        adopt(channel)
        return HTTPBackendServer(channel: channel, served: served)
    }

    func h2Client(_ port: Int) async throws -> H2TestClient { try await H2TestClient.connect(group: group, port: port) }
}

@Suite("HTTP mode: HTTP/2 (h2c prior knowledge) and gRPC", .timeLimit(.minutes(2)))
struct H2ProxyTests {
    @Test func concurrentStreamsOfOneConnectionAreBalancedAndCounted() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a"), b = try await f.h2Backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let client = try await f.h2Client(port)
            let responses = try await withThrowingTaskGroup(of: (Int, H2Response).self) { group in
                for i in 0..<20 {
                    group.addTask {
                        let response = try await client.send(
                            path: "/echo/\(i)", headers: [("content-type", "application/grpc")],
                            body: ["hello-", "\(i)-", String(repeating: "x", count: 1000 * i)],
                            trailers: [("x-client-trailer", "t\(i)")])
                        return (i, response)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            await client.close()
            var seen: [String: Int] = [:]
            for (i, response) in responses {
                #expect(response.status == "200", "\(response)")
                #expect(response.body == "hello-\(i)-" + String(repeating: "x", count: 1000 * i))
                #expect(response.headers.first(name: "x-path") == "/echo/\(i)")
                #expect(response.headers.first(name: "x-method") == "POST")
                #expect(response.headers.first(name: "x-authority") == "web.test")
                #expect(response.trailers?.first(name: "grpc-status") == "0")
                #expect(response.trailers?.first(name: "x-backend-trailer") == response.backend)
                #expect(response.trailers?.first(name: "x-client-trailer") == "t\(i)")
                seen[response.backend ?? "?", default: 0] += 1
            }
            #expect(responses.count == 20)
            #expect(seen == ["a": 10, "b": 10])
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.connectionsTotal == 1)
            #expect(counters.http.requestsTotal == 20)
            #expect(counters.backends.map(\.requests) == [10, 10])
            #expect(counters.backends.map { $0.responses[1] } == [10, 10])
            // Multiplexed: one upstream connection per backend carried all of its streams.
            #expect(counters.backends.map(\.connectionsTotal) == [1, 1])
            #expect(a.served.value == 10 && b.served.value == 10)
            #expect(counters.backends.map(\.connectionsActive) == [0, 0])
        }
    }

    @Test func largeBodiesPassBothWaysWithFlowControl() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a")
            let port = try await f.listen([(a, nil)])
            let client = try await f.h2Client(port)
            // 2 MiB each way on one stream: far more than the 64 KiB windows, so it only passes if
            // window updates flow through the proxy in both directions.
            let parts = (0..<32).map { String(repeating: Character(UnicodeScalar(UInt8(97 + $0 % 26))), count: 65_536) }
            let response = try await client.send(body: parts)
            #expect(response.status == "200")
            #expect(response.body.count == 32 * 65_536)
            #expect(response.body == parts.joined())
            #expect(response.trailers?.first(name: "grpc-status") == "0")
            await client.close()
        }
    }

    @Test func aFullUpstreamConnectionMakesTheProxyOpenAnother() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a", maxStreams: 1)
            let port = try await f.listen([(a, nil)])
            let client = try await f.h2Client(port)
            // The first stream teaches the pool the backend's limit (its SETTINGS).
            #expect(try await client.send(body: ["x"]).status == "200")
            let statuses = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<4 { group.addTask { try await client.send(path: "/wait", body: ["y"]).status } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            await client.close()
            #expect(statuses == ["200", "200", "200", "200"])
            let counters = try #require(f.proxy.counters().first)
            // One stream per connection: the four concurrent streams needed four connections.
            #expect(counters.backends.first?.connectionsTotal == 4)
            #expect(counters.backends.first?.requests == 5)
        }
    }

    @Test func aClientResetResetsTheUpstreamStreamAndCountsNothing() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a")
            let port = try await f.listen([(a, nil)])
            let client = try await f.h2Client(port)
            // `/slow` is answered after 2 s, long after the reset even on a loaded machine.
            try await client.sendAndReset(path: "/slow", after: .milliseconds(100))
            try await Task.sleep(nanoseconds: 600_000_000)
            // The backend's stream was reset before its answer: it served nothing.
            #expect(a.served.value == 0)
            var counters = try #require(f.proxy.counters().first)
            #expect(counters.http.requestsTotal == 1)
            #expect(counters.backends.first?.requests == 0)
            #expect(counters.backends.first?.connectionsActive == 0)
            // The connection and the upstream connection still serve.
            #expect(try await client.send(body: ["again"]).body == "again")
            counters = try #require(f.proxy.counters().first)
            #expect(counters.backends.first?.connectionsTotal == 1)
            await client.close()
        }
    }

    @Test func aStreamInFlightFinishesWhenItsBackendIsRemoved() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a"), b = try await f.h2Backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let client = try await f.h2Client(port)
            async let slow = client.send(path: "/slow", body: ["in flight"])
            // Remove the backend the stream went to, once it has one.
            var busy = [0, 0]
            for _ in 0..<200 where busy == [0, 0] {
                try await Task.sleep(nanoseconds: 10_000_000)
                busy = try #require(f.proxy.counters().first?.backends.map(\.connectionsActive))
            }
            let (gone, stays) = busy == [1, 0] ? (("a", a), ("b", b)) : (("b", b), ("a", a))
            _ = try await f.listen(port: port, [(stays.1, nil)])
            let finished = try await slow
            #expect(finished.backend == gone.0 && finished.body == "in flight", "\(finished) \(busy)")
            #expect(finished.trailers?.first(name: "grpc-status") == "0")
            for _ in 0..<3 { #expect(try await client.send(body: ["x"]).backend == stays.0) }
            await client.close()
        }
    }

    @Test func anIdleHTTP2ConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a")
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(name: "idle", address: "127.0.0.1", port: port,
                                      backends: [BackendConfiguration(address: "127.0.0.1", port: a.port)],
                                      idleTimeoutMs: 2000, protocol: .http),
            ]))
            let client = try await f.h2Client(port)
            // Streams now and then keep it open past the timeout (2 s: a 100 ms sleep may overshoot on
            // a loaded machine, not by that much)...
            for _ in 0..<25 {
                #expect(try await client.send(body: ["x"]).status == "200")
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(client.channel.isActive)
            // ... and without any it closes (within a few timeouts, however loaded the machine).
            let quiet = ContinuousClock.now
            while client.channel.isActive, ContinuousClock.now - quiet < .seconds(10) {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            #expect(!client.channel.isActive)
            #expect(f.proxy.counters().first?.connectionsActive == 0)
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/h2load"), "needs h2load (nghttp2-client)"))
    func h2loadThroughTheListener() async throws {
        try await HTTPFixture.run { f in
            let a = try await f.h2Backend("a"), b = try await f.h2Backend("b")
            let port = try await f.listen([(a, nil), (b, nil)])
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/h2load")
            // Enough concurrent streams per upstream connection that the backends' empty DATA frames
            // of many streams arrive together (they once tripped NIO's flood guard on the shared connection).
            process.arguments = ["-n", "2000", "-c", "4", "-m", "20", "http://127.0.0.1:\(port)/h2load"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(text.contains("2000 succeeded, 0 failed"), "\(text)")
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.http.requestsTotal == 2000)
            #expect(counters.backends.map(\.requests) == [1000, 1000])
            #expect(counters.backends.map { $0.responses[1] } == [1000, 1000])
            #expect(a.served.value + b.served.value == 2000)
        }
    }

    @Test func canaryRevisionsCountHTTP2Requests() async throws {
        try await HTTPFixture.run { f in
            let stable = try await f.h2Backend("stable"), canary = try await f.h2Backend("canary")
            let port = try await f.listen([(stable, "v1"), (canary, "v2")],
                                          split: [TrafficWeight(revision: "v1", weight: 75), TrafficWeight(revision: "v2", weight: 25)])
            let client = try await f.h2Client(port)
            for _ in 0..<8 { #expect(try await client.send(body: ["x"]).status == "200") }
            await client.close()
            // Smooth weighted round-robin over revisions: exact for sequential requests.
            let samples = f.proxy.trafficSamples().sorted { $0.revision < $1.revision }
            #expect(samples.map(\.revision) == ["v1", "v2"])
            #expect(samples.map(\.requests) == [6, 2])
            #expect(samples.map { $0.responses[1] } == [6, 2])
            #expect(samples.allSatisfy { $0.latency.count == UInt64($0.requests) })
            #expect(stable.served.value == 6 && canary.served.value == 2)
        }
    }

    @Test func http1StillWorksAndAnHTTP1BackendGives502ToHTTP2() async throws {
        try await HTTPFixture.run { f in
            let http1 = try await f.backend("one")
            let port = try await f.listen([(http1, nil)])
            let client = try await f.client(port)
            for _ in 0..<3 {
                let response = try await client.send(.POST, "/", chunks: ["abc", "def"])
                #expect(response.head.status == .ok)
                #expect(response.backend == "one")
            }
            await client.close()
            // The backend does not speak h2c: the stream gets the proxy's 502.
            let h2 = try await f.h2Client(port)
            let failed = try await h2.send(body: ["x"])
            #expect(failed.status == "502")
            #expect(failed.headers.first(name: "x-weft-proxy") == "upstream-failed")
            await h2.close()
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.http.requestsTotal == 4)
            #expect(counters.backends.first?.responses[1] == 3)
        }
    }

    @Test func noBackendDownBackendAndTimeoutGetProxyAnswersAndGRPCStatus() async throws {
        try await HTTPFixture.run { f in
            let port = try await f.listen([])
            let client = try await f.h2Client(port)
            let none = try await client.send()
            #expect(none.status == "503")
            #expect(none.headers.first(name: "x-weft-proxy") == "no-backend")
            #expect(none.body.contains("has no backend"))
            let grpc = try await client.send(headers: [("content-type", "application/grpc")], body: ["x"])
            #expect(grpc.status == "200")
            #expect(grpc.headers.first(name: "grpc-status") == "14")
            #expect(grpc.headers.first(name: "x-weft-proxy") == "no-backend")
            #expect(grpc.trailers == nil && grpc.body.isEmpty)
            await client.close()

            let gone = try await f.freePort()
            let deadPort = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                ListenerConfiguration(name: "dead", address: "127.0.0.1", port: deadPort,
                                      backends: [BackendConfiguration(address: "127.0.0.1", port: gone)], protocol: .http),
            ]))
            let second = try await f.h2Client(deadPort)
            let failed = try await second.send()
            #expect(failed.status == "502")
            #expect(failed.headers.first(name: "x-weft-proxy") == "upstream-failed")
            let failedGRPC = try await second.send(headers: [("content-type", "application/grpc+proto")])
            #expect(failedGRPC.headers.first(name: "grpc-status") == "14")
            await second.close()

            let slow = try await f.h2Backend("slow")
            let slowPort = try await f.listen([(slow, nil)], http: HTTPRouteSettings(timeoutMs: 300))
            let third = try await f.h2Client(slowPort)
            let timedOut = try await third.send(path: "/slow")
            #expect(timedOut.status == "504")
            #expect(timedOut.headers.first(name: "x-weft-proxy") == "timeout")
            let timedOutGRPC = try await third.send(path: "/slow", headers: [("content-type", "application/grpc")])
            #expect(timedOutGRPC.headers.first(name: "grpc-status") == "4")
            // The connection still serves other streams.
            #expect(try await third.send(path: "/fast", body: ["ok"]).body == "ok")
            await third.close()
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.http.timedOut == 2)
        }
    }

    @Test func theFirstBytesDecideTheProtocol() {
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0")) == .http2)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) == .http2)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "PRI * HT")) == .undecided)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "P")) == .undecided)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "POST / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolSniffer.classify(ByteBuffer(string: "PRI * HTTP/1.1\r\n\r\n")) == .http1)
    }

    @Test func connectionSpecificFieldsAreNotForwarded() {
        let headers = HPACKHeaders([
            (":method", "GET"), (":path", "/x"), (":authority", "a"), (":scheme", "http"),
            ("connection", "close"), ("keep-alive", "1"), ("te", "trailers"), ("upgrade", "h2c"), ("x-a", "b"),
        ])
        let forwarded = H2Forwarding.forward(headers)
        #expect(forwarded.map(\.name) == [":method", ":path", ":authority", ":scheme", "te", "x-a"])
        #expect(H2Forwarding.forward(HPACKHeaders([("te", "gzip")])).isEmpty)
        #expect(H2Forwarding.percentEncoded("a b%\n") == "a b%25%0A")
    }
}

@Suite("HTTP mode: h2c through the mTLS tunnel", .timeLimit(.minutes(1)))
struct H2TunnelTests {
    @Test func streamsShareOneTunnelledUpstreamConnection() async throws {
        try await TunnelFixture.run { f in
            try await HTTPFixture.run { h in
                let backend = try await h.h2Backend("remote")
                let inbound = try await f.startInbound()
                defer { Task { await inbound.shutdown() } }
                let port = try await f.sockets.freePort()
                var listener = f.tunnelledListener(port: port, backendPort: backend.port, inbound: inbound)
                listener.protocol = .http
                listener.service = "default/remote"
                try await f.proxy.apply(ProxyConfiguration(listeners: [listener]))

                let client = try await H2TestClient.connect(group: f.group, port: port)
                let bodies = try await withThrowingTaskGroup(of: String.self) { group in
                    for i in 0..<10 {
                        group.addTask {
                            let response = try await client.send(headers: [("content-type", "application/grpc")], body: ["over the tunnel \(i)"])
                            #expect(response.trailers?.first(name: "grpc-status") == "0")
                            return response.body
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.insert($1) }
                }
                await client.close()
                #expect(bodies == Set((0..<10).map { "over the tunnel \($0)" }))
                // One HTTP/2 connection to the backend, inside one tunnel stream, carried every stream.
                #expect(inbound.counters().streams == 1)
                #expect(f.requests.withLock { $0 }.allSatisfy { $0.source == f.frontend })
                #expect(backend.served.value == 10)
                #expect(f.proxy.trafficSamples().first?.requests == 10)
            }
        }
    }

    @Test func aDeniedGRPCCallGetsPermissionDenied() async throws {
        try await TunnelFixture.run { f in
            try await HTTPFixture.run { h in
                let backend = try await h.h2Backend("remote")
                let inbound = try await f.startInbound()
                defer { Task { await inbound.shutdown() } }
                f.verdict.withLock { $0 = .deny("no rule of default/remote allows spiffe://a.test/ns/default/sa/frontend") }
                let port = try await f.sockets.freePort()
                var listener = f.tunnelledListener(port: port, backendPort: backend.port, inbound: inbound)
                listener.protocol = .http
                try await f.proxy.apply(ProxyConfiguration(listeners: [listener]))

                let client = try await H2TestClient.connect(group: f.group, port: port)
                let denied = try await client.send(headers: [("content-type", "application/grpc")])
                #expect(denied.headers.first(name: "grpc-status") == "7")
                #expect(denied.headers.first(name: "x-weft-proxy") == "denied")
                let plain = try await client.send()
                #expect(plain.status == "403")
                #expect(backend.served.value == 0)
                #expect(f.proxy.counters().first?.http.denied == 2)
                await client.close()
            }
        }
    }
}
