import NIOCore
import NIOEmbedded
import NIOHTTP2
import Testing
import WeftCore
@testable import WeftProxy

/// An `http` listener's client connection as `NodeProxy` sets it up (sniffer, then the HTTP/1.1
/// handler), on an EmbeddedChannel.
final class EmbeddedSniffedConnection {
    let loop = EmbeddedEventLoop()
    let runtime: ListenerRuntime
    let client: EmbeddedChannel
    let upstreams = UpstreamBox()

    init() throws {
        runtime = ListenerRuntime(ListenerConfiguration(
            name: "test", address: "127.0.0.1", port: 9000,
            backends: [BackendConfiguration(address: "127.0.0.1", port: 8001)], protocol: .http))
        client = EmbeddedChannel(loop: loop)
        let box = upstreams
        let connector = BackendConnector { _, client, _ in
            let channel = EmbeddedChannel(loop: client.eventLoop as! EmbeddedEventLoop)
            box.channels.append(channel)
            return channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 8001)).map { channel }
        }
        let http1 = HTTPProxyHandler(runtime: runtime, connector: connector)
        try client.pipeline.syncOperations.addHandlers([ProtocolSniffer(http1: http1, runtime: runtime, connector: connector), http1])
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
    }

    func has<H: ChannelHandler>(_ type: H.Type) -> Bool {
        (try? client.pipeline.syncOperations.handler(type: type)) != nil
    }
}

@Suite("Protocol sniffing on http listeners (EmbeddedChannel)")
struct ProtocolSnifferTests {
    @Test func anHTTP1RequestGoesToTheHTTP1HandlerAndTheSnifferLeaves() throws {
        let c = try EmbeddedSniffedConnection()
        try c.client.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n"))
        #expect(!c.has(ProtocolSniffer.self))
        #expect(c.has(HTTPProxyHandler.self))
        c.loop.run()  // the end of the loop's turn, when the request is flushed
        var sent = try #require(try c.upstreams.channels.first?.readOutbound(as: ByteBuffer.self))
        #expect(sent.readString(length: sent.readableBytes)?.hasPrefix("GET /a HTTP/1.1\r\n") == true)
        #expect(c.runtime.activeConnections == 1)
    }

    @Test func thePrefaceInPiecesSwitchesTheConnectionToHTTP2() throws {
        let c = try EmbeddedSniffedConnection()
        try c.client.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n"))
        // Undecided: nothing went anywhere yet.
        #expect(c.has(ProtocolSniffer.self) && c.has(HTTPProxyHandler.self))
        var rest = ByteBuffer(string: "\r\nSM\r\n\r\n")
        rest.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  // an empty SETTINGS frame
        try c.client.writeInbound(rest)
        #expect(!c.has(ProtocolSniffer.self) && !c.has(HTTPProxyHandler.self))
        #expect(c.has(NIOHTTP2Handler.self) && c.has(H2ProxyConnection.self))
        // The proxy's own SETTINGS went out (frame type 4 on stream 0), and the client's were acknowledged.
        var out = ByteBuffer()
        while var part = try c.client.readOutbound(as: ByteBuffer.self) { out.writeBuffer(&part) }
        #expect(out.getInteger(at: 3, as: UInt8.self) == 4)
        #expect(out.readableBytes > 9)
        // One admission, handed over: the HTTP/2 side counts the connection closed.
        #expect(c.runtime.activeConnections == 1)
        _ = try? c.client.finish()
        #expect(c.runtime.activeConnections == 0)
    }

    @Test func aConnectionThatEndsInsideThePrefaceIsClosedByTheHTTP1Handler() throws {
        let c = try EmbeddedSniffedConnection()
        try c.client.writeInbound(ByteBuffer(string: "PR"))
        c.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!c.client.isActive)
        #expect(c.runtime.activeConnections == 0)
        #expect(c.upstreams.channels.isEmpty)
    }
}
