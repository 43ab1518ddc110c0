import NIOCore
import NIOHTTP2

/// The backend side of one proxied stream: a stream of a pooled upstream HTTP/2 connection, paired
/// with the client's `H2StreamProxy` until either ends.
final class H2UpstreamStream: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var client: H2StreamProxy?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// END_STREAM sent / received: once both, the stream is closed and must not be reset (a backend
    /// counts resets; too many and it closes the shared connection).
    private var sentEnd = false
    private var receivedEnd = false

    init(client: H2StreamProxy) {
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func write(_ payload: HTTP2Frame.FramePayload) {
        if payload.endsStream { sentEnd = true }
        context?.write(wrapOutboundOut(payload), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The client's side is done with this stream: resets it unless it already ended both ways.
    func detach() {
        client = nil
        if !(sentEnd && receivedEnd) { context?.close(promise: nil) }
    }

    func resumeReading() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        if payload.endsStream { receivedEnd = true }
        switch payload {
        case .headers(let headers): client?.upstreamHeaders(headers)
        case .data(let data):
            // An empty DATA frame without END_STREAM carries nothing; passing it on could only trip
            // the client's guard against floods of them.
            if data.data.readableBytes > 0 || data.endStream { client?.upstreamData(data) }
        default: break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let client, !client.clientIsWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        client?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let client = self.client
        self.client = nil
        client?.upstreamClosed()
    }
}

@available(*, unavailable)
extension H2UpstreamStream: Sendable {}

extension HTTP2Frame.FramePayload {
    /// Whether this is a HEADERS or DATA frame with END_STREAM.
    var endsStream: Bool {
        switch self {
        case .headers(let headers): headers.endStream
        case .data(let data): data.endStream
        default: false
        }
    }
}
