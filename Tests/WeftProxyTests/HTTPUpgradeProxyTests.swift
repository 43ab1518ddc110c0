import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing
import WeftProxy

/// A WebSocket backend: NIO's own server upgrader checks the handshake, then every text or binary
/// message is echoed, and a close frame is answered with one before the connection closes.
final class WebSocketEchoBackend: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }
}

/// An upgrade to a made-up `echo` protocol, answered by hand: after the 101, bytes are echoed, and a
/// half-close is answered with `bye` and a half-close.
final class RawUpgradeEchoBackend: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var head = ByteBuffer()
    private var switched = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if switched {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            return
        }
        head.writeBuffer(&bytes)
        guard let end = ByteReader.headEnd(head) else { return }
        let request = head.readString(length: end)!.lowercased()
        guard request.contains("\r\nupgrade: echo\r\n"), request.contains("\r\nconnection: upgrade\r\n") else {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")), promise: nil)
            return
        }
        switched = true
        context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")), promise: nil)
        if head.readableBytes > 0 { context.write(wrapOutboundOut(head), promise: nil) }
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.write(wrapOutboundOut(ByteBuffer(string: "bye")), promise: nil)
            context.flush()
            context.close(mode: .output, promise: nil)
        }
    }
}

/// Reads a byte stream: message heads, WebSocket frames, the end.
struct ByteReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var buffer = ByteBuffer()

    /// The end of the first head (after its empty line) in `buffer`, if it is there.
    static func headEnd(_ buffer: ByteBuffer) -> Int? {
        let bytes = Array(buffer.readableBytesView)
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    mutating func fill(_ count: Int) async throws {
        while buffer.readableBytes < count {
            guard var more = try await iterator.next() else { throw ChannelError.eof }
            buffer.writeBuffer(&more)
        }
    }

    mutating func head() async throws -> String {
        while true {
            if let end = Self.headEnd(buffer) { return buffer.readString(length: end)! }
            try await fill(buffer.readableBytes + 1)
        }
    }

    mutating func string(_ count: Int) async throws -> String {
        try await fill(count)
        return buffer.readString(length: count)!
    }

    /// One unmasked frame (as a server sends them): its opcode and payload.
    mutating func frame() async throws -> (opcode: UInt8, payload: [UInt8]) {
        try await fill(2)
        let first = buffer.readInteger(as: UInt8.self)!, second = buffer.readInteger(as: UInt8.self)!
        var length = Int(second & 0x7F)
        if length == 126 {
            try await fill(2)
            length = Int(buffer.readInteger(as: UInt16.self)!)
        } else if length == 127 {
            try await fill(8)
            length = Int(buffer.readInteger(as: UInt64.self)!)
        }
        try await fill(length)
        return (first & 0x0F, buffer.readBytes(length: length)!)
    }

    /// Whether the stream ends with no more bytes.
    mutating func atEnd() async throws -> Bool {
        guard buffer.readableBytes == 0 else { return false }
        return try await iterator.next() == nil
    }
}

/// A masked client frame (RFC 6455 §5.2).
func clientFrame(opcode: UInt8, _ payload: [UInt8]) -> ByteBuffer {
    var frame = ByteBuffer()
    frame.writeInteger(0x80 | opcode)
    if payload.count < 126 {
        frame.writeInteger(UInt8(0x80 | payload.count))
    } else {
        frame.writeInteger(UInt8(0x80 | 126))
        frame.writeInteger(UInt16(payload.count))
    }
    let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    frame.writeBytes(mask)
    frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    return frame
}

extension HTTPFixture {
    /// A backend server on loopback whose connections get `configure`.
    func server(halfClosure: Bool = false, _ configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> HTTPBackendServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: halfClosure)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try configure(channel) } }
            .bind(host: "127.0.0.1", port: 0).get()
        adopt(channel)
        return HTTPBackendServer(channel: channel, served: Counter())
    }

    /// A raw byte connection to `port`, whose output the test may half-close.
    func rawClient(_ port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
    }
}

@Suite("HTTP mode: Upgrade and WebSocket through a NodeProxy on loopback sockets", .timeLimit(.minutes(2)))
struct HTTPUpgradeProxyTests {
    @Test func aWebSocketSessionThroughAnHTTPListener() async throws {
        try await HTTPFixture.run { f in
            let upgrades = Counter()
            let backend = try await f.server { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, _ in
                        upgrades.add()
                        return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("x-backend", "ws")]))
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(WebSocketEchoBackend()) }
                    })
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
            }
            let port = try await f.listen([(backend, nil)])
            let client = try await f.rawClient(port)
            try await client.executeThenClose { inbound, outbound in
                var reader = ByteReader(iterator: inbound.makeAsyncIterator())
                try await outbound.write(ByteBuffer(string: "GET /chat HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
                let head = try await reader.head().lowercased()
                #expect(head.hasPrefix("http/1.1 101 switching protocols\r\n"))
                #expect(head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n"))
                #expect(head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"))
                #expect(head.contains("\r\nx-backend: ws\r\n"))
                // Small messages one at a time, then several in one write, then one larger than a read.
                for i in 0..<5 {
                    let text = "message \(i)"
                    try await outbound.write(clientFrame(opcode: 1, Array(text.utf8)))
                    let frame = try await reader.frame()
                    #expect(frame.opcode == 1 && String(decoding: frame.payload, as: UTF8.self) == text)
                }
                var burst = ByteBuffer()
                for i in 0..<20 { burst.writeImmutableBuffer(clientFrame(opcode: 1, Array("burst \(i)".utf8))) }
                try await outbound.write(burst)
                for i in 0..<20 {
                    let frame = try await reader.frame()
                    #expect(String(decoding: frame.payload, as: UTF8.self) == "burst \(i)")
                }
                let large = (0..<16_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                try await outbound.write(clientFrame(opcode: 2, large))
                let echoed = try await reader.frame()
                #expect(echoed.opcode == 2 && echoed.payload == large)
                // The close handshake; the backend then closes, and so does the proxy's client side.
                try await outbound.write(clientFrame(opcode: 8, [0x03, 0xE8]))
                let close = try await reader.frame()
                #expect(close.opcode == 8 && close.payload == [0x03, 0xE8])
                let ended = try await reader.atEnd()
                #expect(ended)
            }
            #expect(upgrades.value == 1)
            let counters = try await settled(f) { $0.connectionsActive == 0 }
            #expect(counters.connectionsActive == 0 && counters.backends.first?.connectionsActive == 0)
            #expect(counters.backends.first?.responses == [1, 0, 0, 0, 0])
            #expect(counters.http.requestsTotal == 1)
            #expect((counters.backends.first?.bytesIn ?? 0) > 16_000 && (counters.backends.first?.bytesOut ?? 0) > 16_000)
        }
    }

    @Test func aHalfCloseCrossesTheRelayBothWays() async throws {
        try await HTTPFixture.run { f in
            let backend = try await f.server(halfClosure: true) { channel in
                try channel.pipeline.syncOperations.addHandler(RawUpgradeEchoBackend())
            }
            let port = try await f.listen([(backend, nil)])
            let client = try await f.rawClient(port)
            try await client.executeThenClose { inbound, outbound in
                var reader = ByteReader(iterator: inbound.makeAsyncIterator())
                try await outbound.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: web\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"))
                let head = try await reader.head()
                #expect(head == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nconnection: upgrade\r\n\r\n")
                for word in ["one", "two", "three"] {
                    try await outbound.write(ByteBuffer(string: word))
                    let echoed = try await reader.string(word.utf8.count)
                    #expect(echoed == word)
                }
                // The client stops sending; the backend sees it, answers and stops too.
                outbound.finish()
                let last = try await reader.string(3)
                #expect(last == "bye")
                let ended = try await reader.atEnd()
                #expect(ended)
            }
            // A plain request on the same listener is still ordinary HTTP.
            let ordinary = try await f.rawClient(port)
            try await ordinary.executeThenClose { inbound, outbound in
                var reader = ByteReader(iterator: inbound.makeAsyncIterator())
                try await outbound.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: web\r\n\r\n"))
                let head = try await reader.head()
                #expect(head.hasPrefix("HTTP/1.1 400 Bad Request"))
            }
            let counters = try await settled(f) { $0.connectionsActive == 0 }
            #expect(counters.connectionsActive == 0)
            #expect(counters.backends.first?.responses == [1, 0, 0, 1, 0])
        }
    }

    /// The listener's counters once `done` holds for them (connections are released asynchronously).
    private func settled(_ f: HTTPFixture, _ done: (ListenerCounters) -> Bool) async throws -> ListenerCounters {
        for _ in 0..<1000 {
            if let counters = f.proxy.counters().first, done(counters) { return counters }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try #require(f.proxy.counters().first)
    }
}
