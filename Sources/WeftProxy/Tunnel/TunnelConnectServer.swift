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
        let source: SPIFFEID?
        switch InboundService.source(peer: peer, claimed: headers.first(name: TunnelProtocol.sourceHeader)) {
        case .success(let id): source = id
        case .failure(let refusal):
            respond(refusal.status, refusal.reason, context: context)
            return
        }
        let (status, reason) = service.decide(destination: authority, peer: peer, source: source)
        guard status == 200, let address = InboundService.address(authority) else {
            respond(status, reason ?? "refused", context: context)
            return
        }
        state = .connecting
        service.connect(address, on: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                self.service.connectFailed()
                self.respond(502, "the replica at \(authority) did not accept: \(error)", context: context)
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
/// that holds its own SVID: `CONNECT ip:port HTTP/1.1`, answered `200 Connection Established` and
/// then spliced, or refused with the status and reason, after which the connection closes.
final class HTTP1ConnectServer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State { case awaitingRequest, connecting, spliced, closed }

    private let service: InboundService
    private let peer: SPIFFEID
    private var state = State.awaitingRequest

    init(service: InboundService, peer: SPIFFEID) {
        self.service = service
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .awaitingRequest = state, case .head(let head) = unwrapInboundIn(data) else { return }
        guard head.method == .CONNECT else {
            respond(.methodNotAllowed, "only CONNECT is served here", context: context)
            return
        }
        let source: SPIFFEID?
        switch InboundService.source(peer: peer, claimed: head.headers.first(name: TunnelProtocol.sourceHeader)) {
        case .success(let id): source = id
        case .failure(let refusal):
            respond(.badRequest, refusal.reason, context: context)
            return
        }
        let (status, reason) = service.decide(destination: head.uri, peer: peer, source: source)
        guard status == 200, let address = InboundService.address(head.uri) else {
            respond(HTTPResponseStatus(statusCode: status), reason ?? "refused", context: context)
            return
        }
        state = .connecting
        service.connect(address, on: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                self.service.connectFailed()
                self.respond(.badGateway, "the replica at \(head.uri) did not accept: \(error)", context: context)
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
        var head = HTTPResponseHead(version: .http1_1, status: .custom(code: 200, reasonPhrase: "Connection Established"))
        head.headers.add(name: "content-length", value: "0")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        let glue = GlueHandler.matchedPair()
        let pipeline = context.pipeline.syncOperations
        do {
            try backend.pipeline.syncOperations.addHandler(glue.backend)
            try pipeline.addHandler(glue.client)
            // The decoder hands what the client sent after the request to the glue as it goes.
            pipeline.removeHandler(context: context, promise: nil)
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            pipeline.removeHandler(encoder, promise: nil)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            backend.close(promise: nil)
            context.close(promise: nil)
        }
    }

    private func respond(_ status: HTTPResponseStatus, _ reason: String, context: ChannelHandlerContext) {
        guard state == .awaitingRequest || state == .connecting else { return }
        state = .closed
        var head = HTTPResponseHead(version: .http1_1, status: status)
        let body = ByteBuffer(string: reason + "\n")
        head.headers.add(name: "content-length", value: String(body.readableBytes))
        head.headers.add(name: "connection", value: "close")
        head.headers.add(name: TunnelProtocol.reasonHeader, value: String(reason.prefix(512)))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP1ConnectServer: Sendable {}
