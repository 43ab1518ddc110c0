import NIOCore
import NIOHTTP2

/// Turns an HTTP/2 stream that carries an established CONNECT tunnel into a byte stream, so a
/// `GlueHandler` can splice it with a TCP connection: DATA frames in and out, END_STREAM as a
/// half-close both ways. An inbound END_STREAM (on DATA or trailers) flushes what came before it and
/// fires `ChannelEvent.inputClosed`; `close(mode: .output)` sends an empty DATA frame with END_STREAM.
final class TunnelStreamAdapter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var inputClosed = false
    private var outputClosed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .data(let frame):
            if case .byteBuffer(let buffer) = frame.data, buffer.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(buffer))
            }
            if frame.endStream { closeInput(context: context) }
        case .headers(let headers):
            // Trailers end the stream; nothing else is expected once the tunnel is up.
            if headers.endStream { closeInput(context: context) }
        default:
            break
        }
    }

    /// Delivers a half-close from elsewhere (bytes and END_STREAM that arrived before the splice).
    func closeInput(context: ChannelHandlerContext) {
        guard !inputClosed else { return }
        inputClosed = true
        context.fireChannelReadComplete()
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = HTTP2Frame.FramePayload.Data(data: .byteBuffer(unwrapOutboundIn(data)))
        context.write(wrapOutboundOut(.data(frame)), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else {
            context.close(mode: mode, promise: promise)
            return
        }
        guard !outputClosed else {
            promise?.succeed(())
            return
        }
        outputClosed = true
        let end = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer()), endStream: true)
        context.writeAndFlush(wrapOutboundOut(.data(end)), promise: promise)
    }
}

@available(*, unavailable)
extension TunnelStreamAdapter: Sendable {}
