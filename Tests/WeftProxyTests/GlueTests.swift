import NIOCore
import NIOEmbedded
import Testing
import WeftCore
@testable import WeftProxy

/// Records outbound `read` and `close(mode:)` calls at the head of a pipeline; swallows half-closes
/// (EmbeddedChannel would turn them into full closes).
final class OutboundRecorder: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    var outputCloses = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            outputCloses += 1
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

/// An embedded proxy connection: a client channel running `ProxyConnectionHandler` whose backend
/// connects are answered by the test (EmbeddedChannels on the same loop, or failures).
final class EmbeddedProxy: @unchecked Sendable {
    let loop = EmbeddedEventLoop()
    let runtime: ListenerRuntime
    /// Backends that refuse connections.
    var refusing: Set<Int> = []
    /// When set, connects wait for the test to complete them.
    var holdConnects = false
    var held: [(port: Int, promise: EventLoopPromise<any Channel>)] = []
    var upstreams: [(port: Int, channel: EmbeddedChannel, recorder: OutboundRecorder)] = []

    init(_ configuration: ListenerConfiguration) {
        runtime = ListenerRuntime(configuration)
    }

    static func listener(ports: [Int], policy: LoadBalancerPolicy = .roundRobin, attempts: Int? = nil,
                         idleTimeoutMs: Int? = nil, drainTimeoutMs: Int? = nil, maxConnections: Int? = nil) -> ListenerConfiguration {
        ListenerConfiguration(
            name: "test", address: "127.0.0.1", port: 9000, loadBalancer: policy,
            backends: ports.map { BackendConfiguration(address: "127.0.0.1", port: $0) },
            idleTimeoutMs: idleTimeoutMs, maxConnections: maxConnections, connectAttempts: attempts, drainTimeoutMs: drainTimeoutMs)
    }

    var connector: BackendConnector {
        BackendConnector { backend, client, _ in
            let loop = client.eventLoop
            let port = backend.address.port!
            if self.refusing.contains(port) {
                return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(1)))
            }
            let promise = loop.makePromise(of: (any Channel).self)
            if self.holdConnects {
                self.held.append((port, promise))
            } else {
                promise.succeed(self.makeUpstream(port: port))
            }
            return promise.futureResult
        }
    }

    func makeUpstream(port: Int) -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        let recorder = OutboundRecorder()
        try! channel.pipeline.syncOperations.addHandler(recorder)
        _ = try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port)).wait()
        upstreams.append((port, channel, recorder))
        return channel
    }

    /// A new client connection; returns its channel and the recorder at the head of its pipeline.
    func connectClient() throws -> (EmbeddedChannel, OutboundRecorder) {
        let client = EmbeddedChannel(loop: loop)
        let recorder = OutboundRecorder()
        try client.pipeline.syncOperations.addHandler(recorder)
        try client.pipeline.syncOperations.addHandler(ProxyConnectionHandler(runtime: runtime, connector: connector))
        _ = try client.connect(to: SocketAddress(ipAddress: "10.0.0.1", port: 50000)).wait()
        loop.run()
        return (client, recorder)
    }

    func backendCounters(_ port: Int) -> BackendCounters? {
        runtime.counters().backends.first { $0.id == "127.0.0.1:\(port)" }
    }
}

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func readText(_ channel: EmbeddedChannel) throws -> String? {
    guard var out = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
    return out.readString(length: out.readableBytes)
}

@Suite("Glue and connection handling (EmbeddedChannel)")
struct GlueTests {
    @Test func splicesBytesBothWays() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        let (client, _) = try proxy.connectClient()
        let upstream = try #require(proxy.upstreams.first?.channel)
        try client.writeInbound(buffer("ping"))
        #expect(try readText(upstream) == "ping")
        try upstream.writeInbound(buffer("pong"))
        #expect(try readText(client) == "pong")
        try client.close().wait()
        #expect(!upstream.isActive)
        let counters = try #require(proxy.backendCounters(8001))
        #expect(counters.bytesIn == 4 && counters.bytesOut == 4)
        #expect(counters.connectionsTotal == 1 && counters.connectionsActive == 0)
        #expect(proxy.runtime.counters().connectionsActive == 0)
    }

    @Test func holdsEarlyBytesAndStopsReadingWhileConnecting() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        proxy.holdConnects = true
        let (client, recorder) = try proxy.connectClient()
        #expect(recorder.reads == 0)  // nothing is read until the backend is connected
        // Bytes and a half-close that arrive anyway (NIO reads when it sees an early EOF) are held.
        try client.writeInbound(buffer("GET / "))
        try client.writeInbound(buffer("HTTP/1.1"))
        client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(recorder.reads == 0)
        let held = try #require(proxy.held.first)
        held.promise.succeed(proxy.makeUpstream(port: held.port))
        proxy.loop.run()
        let upstream = try #require(proxy.upstreams.first)
        #expect(try readText(upstream.channel) == "GET / HTTP/1.1")
        #expect(upstream.recorder.outputCloses == 1)  // the early half-close was passed on
    }

    @Test func clientLeavingWhileConnectingReleasesTheBackend() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        proxy.holdConnects = true
        let (client, _) = try proxy.connectClient()
        try client.close().wait()
        let held = try #require(proxy.held.first)
        held.promise.succeed(proxy.makeUpstream(port: held.port))
        proxy.loop.run()
        #expect(!proxy.upstreams[0].channel.isActive)
        #expect(proxy.backendCounters(8001)?.connectionsActive == 0)
        #expect(proxy.runtime.counters().connectionsActive == 0)
    }

    @Test func clientHalfCloseBecomesUpstreamOutputClose() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        let (client, clientRecorder) = try proxy.connectClient()
        let upstream = try #require(proxy.upstreams.first)
        client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(upstream.recorder.outputCloses == 1)
        #expect(clientRecorder.outputCloses == 0)
        // The backend still answers after the client's half-close.
        try upstream.channel.writeInbound(buffer("late reply"))
        #expect(try readText(client) == "late reply")
    }

    @Test func upstreamHalfCloseBecomesClientOutputClose() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        let (client, clientRecorder) = try proxy.connectClient()
        let upstream = try #require(proxy.upstreams.first)
        upstream.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(clientRecorder.outputCloses == 1)
        #expect(upstream.recorder.outputCloses == 0)
        try client.writeInbound(buffer("more"))
        #expect(try readText(upstream.channel) == "more")
    }

    @Test func readsOnlyWhilePartnerIsWritable() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001]))
        let (client, clientRecorder) = try proxy.connectClient()
        let upstream = try #require(proxy.upstreams.first)

        let before = clientRecorder.reads
        client.read()
        #expect(clientRecorder.reads == before + 1)

        upstream.channel.isWritable = false
        upstream.channel.pipeline.fireChannelWritabilityChanged()
        client.read()
        client.read()
        #expect(clientRecorder.reads == before + 1)  // held

        upstream.channel.isWritable = true
        upstream.channel.pipeline.fireChannelWritabilityChanged()
        #expect(clientRecorder.reads == before + 2)  // resumed once

        // And the other direction.
        let upstreamBefore = upstream.recorder.reads
        client.isWritable = false
        client.pipeline.fireChannelWritabilityChanged()
        upstream.channel.read()
        #expect(upstream.recorder.reads == upstreamBefore)
        client.isWritable = true
        client.pipeline.fireChannelWritabilityChanged()
        #expect(upstream.recorder.reads == upstreamBefore + 1)
    }

    @Test func connectFailureTriesTheNextBackend() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001, 8002]))
        proxy.refusing = [8001]
        let (client, _) = try proxy.connectClient()
        #expect(client.isActive)
        #expect(proxy.upstreams.map(\.port) == [8002])
        try client.writeInbound(buffer("hello"))
        #expect(try readText(proxy.upstreams[0].channel) == "hello")
        #expect(proxy.backendCounters(8001)?.connectFailures == 1)
        #expect(proxy.backendCounters(8001)?.connectionsActive == 0)
        #expect(proxy.backendCounters(8002)?.connectionsActive == 1)
    }

    @Test func closesTheClientWhenNoBackendConnects() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001, 8002, 8003, 8004], attempts: 3))
        proxy.refusing = [8001, 8002, 8003, 8004]
        let (client, _) = try proxy.connectClient()
        #expect(!client.isActive)
        let counters = proxy.runtime.counters()
        #expect(counters.connectionsFailed == 1 && counters.connectionsActive == 0)
        #expect(counters.backends.map(\.connectFailures).reduce(0, +) == 3)  // connectAttempts
    }

    @Test func closesTheClientWhenThereAreNoBackends() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: []))
        let (client, _) = try proxy.connectClient()
        #expect(!client.isActive)
        #expect(proxy.runtime.counters().connectionsFailed == 1)
    }

    @Test func ejectsABackendAfterConsecutiveFailures() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001, 8002, 8003]))
        proxy.refusing = [8001]
        for _ in 0..<20 {
            let (client, _) = try proxy.connectClient()
            #expect(client.isActive)
        }
        let refused = try #require(proxy.backendCounters(8001))
        #expect(refused.ejections == 1 && refused.ejected)
        #expect(refused.connectFailures == 5)  // then ejected: no more attempts
    }

    @Test func removedBackendDrainsThenCloses() throws {
        var configuration = EmbeddedProxy.listener(ports: [8001, 8002], drainTimeoutMs: 5000)
        let proxy = EmbeddedProxy(configuration)
        let (first, _) = try proxy.connectClient()
        let firstPort = try #require(proxy.upstreams.first?.port)
        let otherPort = firstPort == 8001 ? 8002 : 8001

        configuration.backends.removeAll { $0.port == firstPort }
        proxy.runtime.reconfigure(configuration)
        #expect(proxy.backendCounters(firstPort)?.draining == true)

        // New connections never go to the removed backend.
        for _ in 0..<4 {
            _ = try proxy.connectClient()
        }
        #expect(proxy.upstreams.dropFirst().allSatisfy { $0.port == otherPort })

        // The old connection keeps working until the drain timeout.
        proxy.loop.advanceTime(by: .milliseconds(4000))
        #expect(first.isActive)
        try first.writeInbound(buffer("still here"))
        #expect(try readText(proxy.upstreams[0].channel) == "still here")
        proxy.loop.advanceTime(by: .milliseconds(1001))
        #expect(!first.isActive)
        #expect(!proxy.upstreams[0].channel.isActive)
        #expect(proxy.backendCounters(firstPort) == nil)  // gone once drained
    }

    @Test func backendReaddedDuringDrainKeepsItsConnections() throws {
        let configuration = EmbeddedProxy.listener(ports: [8001], drainTimeoutMs: 1000)
        let proxy = EmbeddedProxy(configuration)
        let (client, _) = try proxy.connectClient()
        var without = configuration
        without.backends = []
        proxy.runtime.reconfigure(without)
        proxy.runtime.reconfigure(configuration)
        proxy.loop.advanceTime(by: .milliseconds(2000))
        #expect(client.isActive)
    }

    @Test func idleConnectionsClose() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001], idleTimeoutMs: 1000))
        let (client, _) = try proxy.connectClient()
        for _ in 0..<5 {
            proxy.loop.advanceTime(by: .milliseconds(500))
            try client.writeInbound(buffer("x"))
        }
        #expect(client.isActive)
        proxy.loop.advanceTime(by: .milliseconds(1500))
        #expect(!client.isActive)
        #expect(proxy.backendCounters(8001)?.bytesIn == 5)
    }

    @Test func refusesOverMaxConnections() throws {
        let proxy = EmbeddedProxy(EmbeddedProxy.listener(ports: [8001], maxConnections: 2))
        let (a, _) = try proxy.connectClient()
        let (b, _) = try proxy.connectClient()
        let (c, _) = try proxy.connectClient()
        #expect(a.isActive && b.isActive && !c.isActive)
        #expect(proxy.runtime.counters().connectionsRefused == 1)
        try a.close().wait()
        let (d, _) = try proxy.connectClient()
        #expect(d.isActive)
    }

    @Test func clientKeyIgnoresThePort() throws {
        let a = ProxyConnectionHandler.clientKey(try SocketAddress(ipAddress: "10.1.2.3", port: 1000))
        let b = ProxyConnectionHandler.clientKey(try SocketAddress(ipAddress: "10.1.2.3", port: 2000))
        let c = ProxyConnectionHandler.clientKey(try SocketAddress(ipAddress: "10.1.2.4", port: 1000))
        let v6 = ProxyConnectionHandler.clientKey(try SocketAddress(ipAddress: "::1", port: 1000))
        #expect(a == b && a != c && v6 != 0)
    }
}
