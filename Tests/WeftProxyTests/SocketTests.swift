import Logging
import NIOCore
import NIOPosix
import Testing
import WeftCore
import WeftProxy

/// A backend that says `tag|` when a connection opens, then echoes; closes when the client half-closes.
final class TaggedEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let tag: String
    init(tag: String) { self.tag = tag }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "\(tag)|")), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}

/// Event loops, echo backends and a proxy; everything is closed by `run` whether the test passes or not.
final class SocketFixture: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let proxy: NodeProxy

    init() {
        proxy = NodeProxy(group: group, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func run(_ body: (SocketFixture) async throws -> Void) async throws {
        let fixture = SocketFixture()
        var failure: (any Error)?
        do { try await body(fixture) } catch { failure = error }
        await fixture.proxy.shutdown()
        try? await fixture.group.shutdownGracefully()
        if let failure { throw failure }
    }

    /// A tagged echo server on 127.0.0.1, port 0; the caller closes it.
    func startBackend(_ tag: String) async throws -> (channel: any Channel, port: Int) {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TaggedEcho(tag: tag))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!)
    }

    /// A port nothing listens on right now (bound on port 0, then closed).
    func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    func connect(_ port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
    }

    /// Sends `message`, half-closes, and returns everything received until the other side closes.
    func exchange(_ port: Int, _ message: String) async throws -> String {
        let channel = try await connect(port)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: message))
            outbound.finish()
            var received = ""
            for try await var chunk in inbound {
                received += chunk.readString(length: chunk.readableBytes) ?? ""
                if received.utf8.count > 10_000 { break }
            }
            return received
        }
    }

    func listener(_ name: String, port: Int, backends: [Int], policy: LoadBalancerPolicy? = nil) -> ListenerConfiguration {
        ListenerConfiguration(name: name, address: "127.0.0.1", port: port, loadBalancer: policy,
                              backends: backends.map { BackendConfiguration(address: "127.0.0.1", port: $0) })
    }
}

/// Reads from an open connection until `expected` has arrived (bounded).
func readUntil(_ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, contains expected: String) async throws -> String {
    var received = ""
    for _ in 0..<100 where !received.contains(expected) {
        guard var chunk = try await iterator.next() else { break }
        received += chunk.readString(length: chunk.readableBytes) ?? ""
    }
    return received
}

@Suite("NodeProxy on loopback sockets", .timeLimit(.minutes(1)))
struct SocketTests {
    @Test func connectionsReachEveryBackend() async throws {
        try await SocketFixture.run { f in
            var backends: [(any Channel, Int)] = []
            for tag in ["b0", "b1", "b2"] { backends.append(try await f.startBackend(tag)) }
            defer { for (channel, _) in backends { channel.close(promise: nil) } }
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                f.listener("rr", port: port, backends: backends.map(\.1), policy: .roundRobin),
            ]))
            var tags: [String: Int] = [:]
            for i in 0..<30 {
                let reply = try await f.exchange(port, "hello \(i)")
                let parts = reply.split(separator: "|", maxSplits: 1).map(String.init)
                #expect(parts.count == 2 && parts[1] == "hello \(i)", "\(reply)")
                tags[parts[0], default: 0] += 1
            }
            #expect(tags == ["b0": 10, "b1": 10, "b2": 10])
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.connectionsTotal == 30)
            #expect(counters.backends.allSatisfy { $0.connectionsTotal == 10 && $0.bytesOut >= 10 })
        }
    }

    @Test func defaultPolicyServesEveryConnection() async throws {
        try await SocketFixture.run { f in
            var backends: [(any Channel, Int)] = []
            for tag in ["b0", "b1", "b2"] { backends.append(try await f.startBackend(tag)) }
            defer { for (channel, _) in backends { channel.close(promise: nil) } }
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.listener("p2c", port: port, backends: backends.map(\.1))]))
            try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<40 {
                    group.addTask { try await f.exchange(port, "m\(i)") }
                }
                var count = 0
                for try await reply in group {
                    #expect(reply.hasPrefix("b") && reply.hasSuffix("|m\(reply.split(separator: "m").last!)"))
                    count += 1
                }
                #expect(count == 40)
            }
        }
    }

    @Test func deadBackendIsRetriedAndEjected() async throws {
        try await SocketFixture.run { f in
            var backends: [(any Channel, Int)] = []
            for tag in ["b0", "b1"] { backends.append(try await f.startBackend(tag)) }
            defer { for (channel, _) in backends { channel.close(promise: nil) } }
            let dead = try await f.freePort()
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                f.listener("rr", port: port, backends: [dead] + backends.map(\.1), policy: .roundRobin),
            ]))
            for i in 0..<20 {
                let reply = try await f.exchange(port, "x\(i)")
                #expect(reply.hasSuffix("|x\(i)"), "connection \(i) got \(reply)")
            }
            let counters = try #require(f.proxy.counters().first)
            let deadCounters = try #require(counters.backends.first { $0.id == "127.0.0.1:\(dead)" })
            #expect(deadCounters.connectFailures == 5)
            #expect(deadCounters.ejections == 1 && deadCounters.ejected)
            #expect(counters.connectionsFailed == 0 && counters.connectionsTotal == 20)
        }
    }

    @Test func removingAListenerLeavesOtherConnectionsAlone() async throws {
        try await SocketFixture.run { f in
            let backend = try await f.startBackend("b0")
            defer { backend.channel.close(promise: nil) }
            let (portA, portB) = (try await f.freePort(), try await f.freePort())
            let a = f.listener("a", port: portA, backends: [backend.port])
            let b = f.listener("b", port: portB, backends: [backend.port])
            try await f.proxy.apply(ProxyConfiguration(listeners: [a, b]))

            let open = try await f.connect(portB)
            try await open.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await outbound.write(ByteBuffer(string: "one"))
                #expect(try await readUntil(&iterator, contains: "one") == "b0|one")

                try await f.proxy.apply(ProxyConfiguration(listeners: [b]))
                await #expect(throws: (any Error).self) { _ = try await f.exchange(portA, "refused") }

                try await outbound.write(ByteBuffer(string: "two"))
                #expect(try await readUntil(&iterator, contains: "two") == "two")
                #expect(f.proxy.counters().map(\.name) == ["b"])
            }
        }
    }

    @Test func failedApplyChangesNothing() async throws {
        try await SocketFixture.run { f in
            let backend = try await f.startBackend("b0")
            defer { backend.channel.close(promise: nil) }
            let portA = try await f.freePort()
            let a = f.listener("a", port: portA, backends: [backend.port])
            try await f.proxy.apply(ProxyConfiguration(listeners: [a]))

            // The new listener's port is taken (by the backend): nothing changes, a stays.
            let busy = f.listener("busy", port: backend.port, backends: [backend.port])
            let free = f.listener("free", port: try await f.freePort(), backends: [backend.port])
            do {
                try await f.proxy.apply(ProxyConfiguration(listeners: [free, busy]))
                Issue.record("apply should have failed")
            } catch let error as ProxyConfigurationError {
                #expect(error.description.contains("listeners[1]: listener \"busy\" cannot listen on 127.0.0.1:\(backend.port)"), "\(error)")
            }
            // Invalid: nothing changes either.
            var invalid = a
            invalid.backends = [BackendConfiguration(address: "not-an-ip", port: 1)]
            await #expect(throws: ProxyConfigurationError.self) { try await f.proxy.apply(ProxyConfiguration(listeners: [invalid])) }

            #expect(f.proxy.counters().map(\.name) == ["a"])
            #expect(try await f.exchange(portA, "still") == "b0|still")
            // The rolled-back listener's port was released.
            await #expect(throws: (any Error).self) { _ = try await f.exchange(free.port, "nobody") }
        }
    }

    @Test func aSecondProxyCannotShareAListenersPort() async throws {
        // The acceptors use SO_REUSEPORT; without a check, another proxy of the same user would join
        // the port's group and get half of the connections.
        try await SocketFixture.run { f in
            let backend = try await f.startBackend("first")
            defer { backend.channel.close(promise: nil) }
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.listener("a", port: port, backends: [backend.port])]))
            try await SocketFixture.run { other in
                do {
                    try await other.proxy.apply(ProxyConfiguration(listeners: [other.listener("b", port: port, backends: [backend.port])]))
                    Issue.record("a second proxy bound 127.0.0.1:\(port) too")
                } catch let error as ProxyConfigurationError {
                    #expect(error.description.contains("cannot listen on 127.0.0.1:\(port): address already in use"), "\(error)")
                }
            }
            for i in 0..<20 { #expect(try await f.exchange(port, "\(i)") == "first|\(i)") }
        }
    }

    @Test func backendChangesApplyToNewConnections() async throws {
        try await SocketFixture.run { f in
            let one = try await f.startBackend("one")
            let two = try await f.startBackend("two")
            defer { one.channel.close(promise: nil); two.channel.close(promise: nil) }
            let port = try await f.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.listener("l", port: port, backends: [one.port])]))
            #expect(try await f.exchange(port, "a") == "one|a")
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.listener("l", port: port, backends: [two.port])]))
            #expect(try await f.exchange(port, "b") == "two|b")
            let backends = try #require(f.proxy.counters().first?.backends)
            #expect(backends.map(\.id) == ["127.0.0.1:\(two.port)"])  // the drained one left once idle
        }
    }
}
