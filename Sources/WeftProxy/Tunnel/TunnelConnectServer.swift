import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import WeftPKI

/// The destination side of one tunnel stream: reads the CONNECT, decides, connects to the local
/// replica and answers 200, then splices the stream with that connection. Bytes (and END_STREAM) that
/// arrive before the replica accepted are held and passed on.
final class TunnelConnectServer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State { case awaitingRequest, connecting, spliced, closed }

    private let service: InboundService
    private let peer: SPIFFEID
    private var state = State.awaitingRequest
    private var held: [ByteBuffer] = []
    private var ended = false

    init(service: InboundService, peer: SPIFFEID) {
        self.service = service
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (state, unwrapInboundIn(data)) {
        case (.awaitingRequest, .headers(let headers)):
            request(headers.headers, endStream: headers.endStream, context: context)
        case (.connecting, .data(let frame)):
            if case .byteBuffer(let buffer) = frame.data, buffer.readableBytes > 0 { held.append(buffer) }
            if frame.endStream { ended = true }
        case (.connecting, .headers(let headers)):
            if headers.endStream { ended = true }
        default:
            break
        }
    }

    private func request(_ headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        guard headers.first(name: ":method") == "CONNECT", let authority = headers.first(name: ":authority"), !endStream else {
            respond(405, "only CONNECT with an :authority is served here", context: context)
            return
        }
        state = .connecting
        service.open(destination: authority, peer: peer, claimed: headers.first(name: TunnelProtocol.sourceHeader), on: context.eventLoop)
            .assumeIsolated().whenComplete { result in
                switch result {
                case .failure(let error):
                    let refusal = error as? TunnelRefusal ?? TunnelRefusal(status: 502, reason: "\(error)")
                    self.respond(refusal.status, refusal.reason, context: context)
                case .success(let backend):
                    self.splice(backend, context: context)
                }
            }
    }

    private func splice(_ backend: any Channel, context: ChannelHandlerContext) {
        guard case .connecting = state else {
            backend.close(promise: nil)
            return
        }
        state = .spliced
        let adapter = TunnelStreamAdapter()
        let glue = GlueHandler.matchedPair()
        do {
            try backend.pipeline.syncOperations.addHandler(glue.backend)
            try context.pipeline.syncOperations.addHandler(adapter, position: .after(self))
            try context.pipeline.syncOperations.addHandler(glue.client, position: .after(adapter))
        } catch {
            backend.close(promise: nil)
            context.close(promise: nil)
            return
        }
        let ok = HTTP2Frame.FramePayload.Headers(headers: TunnelProtocol.response(status: 200), endStream: false)
        context.writeAndFlush(wrapOutboundOut(.headers(ok)), promise: nil)
        for buffer in held { backend.write(buffer, promise: nil) }
        if !held.isEmpty { backend.flush() }
        held = []
        if ended { backend.close(mode: .output, promise: nil) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func respond(_ status: Int, _ reason: String, context: ChannelHandlerContext) {
        guard state != .closed, state != .spliced else { return }
        state = .closed
        let headers = HTTP2Frame.FramePayload.Headers(headers: TunnelProtocol.response(status: status, reason: reason), endStream: true)
        context.writeAndFlush(wrapOutboundOut(.headers(headers)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TunnelConnectServer: Sendable {}

/// HTTP/1.1 CONNECT on the inbound port, for a single workload (or a tool such as `openssl s_client`)
/// that holds its own SVID: `CONNECT ip:port HTTP/1.1` and headers, answered `200 Connection
/// Established` and then spliced (bytes sent after the request go to the replica), or refused with the
/// status and reason, after which the connection closes. The request head is read by hand, so nothing
/// the client sends after it can be taken for another request.
final class HTTP1ConnectServer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case awaitingRequest, connecting, spliced, closed }

    /// A request head longer than this is refused.
    static let maxHeadBytes = 8192

    private let service: InboundService
    private let peer: SPIFFEID
    private var state = State.awaitingRequest
    private var received = ByteBuffer()

    init(service: InboundService, peer: SPIFFEID) {
        self.service = service
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        received.writeBuffer(&incoming)
        guard case .awaitingRequest = state else { return }
        let bytes = received.readableBytesView
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            if received.readableBytes > Self.maxHeadBytes { respond(431, "the request head is longer than \(Self.maxHeadBytes) bytes", context: context) }
            return
        }
        let head = String(decoding: bytes[bytes.startIndex..<end.lowerBound], as: UTF8.self)
        received.moveReaderIndex(forwardBy: end.upperBound - bytes.startIndex)
        request(head, context: context)
    }

    private func request(_ head: String, context: ChannelHandlerContext) {
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.first.map { $0.split(separator: " ") } ?? []
        guard requestLine.count == 3, requestLine[0] == "CONNECT", requestLine[2].hasPrefix("HTTP/1.") else {
            respond(405, "only CONNECT ip:port HTTP/1.1 is served here", context: context)
            return
        }
        let destination = String(requestLine[1])
        var claimed: String?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == TunnelProtocol.sourceHeader {
                claimed = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        state = .connecting
        service.open(destination: destination, peer: peer, claimed: claimed, on: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                let refusal = error as? TunnelRefusal ?? TunnelRefusal(status: 502, reason: "\(error)")
                self.respond(refusal.status, refusal.reason, context: context)
            case .success(let backend):
                self.splice(backend, context: context)
            }
        }
    }

    private func splice(_ backend: any Channel, context: ChannelHandlerContext) {
        guard case .connecting = state else {
            backend.close(promise: nil)
            return
        }
        state = .spliced
        let glue = GlueHandler.matchedPair()
        do {
            try backend.pipeline.syncOperations.addHandler(glue.backend)
            try context.pipeline.syncOperations.addHandler(glue.client, position: .after(self))
        } catch {
            backend.close(promise: nil)
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n")), promise: nil)
        if received.readableBytes > 0 {
            backend.writeAndFlush(received, promise: nil)
        }
        received = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func respond(_ status: Int, _ reason: String, context: ChannelHandlerContext) {
        guard state == .awaitingRequest || state == .connecting else { return }
        state = .closed
        let phrase = HTTPResponseStatus(statusCode: status).reasonPhrase
        let body = reason.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") + "\n"
        let response = "HTTP/1.1 \(status) \(phrase)\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP1ConnectServer: Sendable {}
