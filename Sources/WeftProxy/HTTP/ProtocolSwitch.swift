import NIOCore

/// After a `101 Switching Protocols` (WebSocket, h2c, ...) an `http` listener's client connection and
/// its upstream connection speak a protocol the proxy does not know: they become a byte relay, the
/// same `GlueHandler` pair a `tcp` listener splices (backpressure both ways, a half-close passed on as
/// `close(mode: .output)`), with a `ConnectionMeter` for bytes and the listener's idle timeout.
///
/// The HTTP handlers leave both pipelines. The upstream connection stays registered with its pool
/// (never idle, so never reused), so that a drained backend or the proxy's shutdown still closes it.
enum ProtocolSwitch {
    /// Sends `response` (the 101 head as the client gets it) and `upstreamBytes` (what came after it)
    /// to `client`, whose HTTP handler is `handler`; splices it with `upstream`, passing on
    /// `clientBytes` (what the client sent after the request) and a half-close the client already
    /// sent; then lets the glue read both sides.
    static func splice(
        client context: ChannelHandlerContext, handler: HTTPProxyHandler, upstream: UpstreamConnection,
        pool: UpstreamPool, meter: ConnectionMeter, idleTimeout: TimeAmount,
        response: ByteBuffer, upstreamBytes: ByteBuffer, clientBytes: ByteBuffer?, clientInputClosed: Bool
    ) {
        context.write(NIOAny(response), promise: nil)
        if upstreamBytes.readableBytes > 0 {
            meter.count(upstreamBytes.readableBytes, from: .backend)
            context.write(NIOAny(upstreamBytes), promise: nil)
        }
        context.flush()
        let glue = GlueHandler.matchedPair(meter: meter)
        let backend = upstream.channel
        do {
            try backend.pipeline.syncOperations.addHandler(glue.backend)
            try context.pipeline.syncOperations.addHandler(glue.client, position: .after(handler))
        } catch {
            upstream.close()
            context.close(promise: nil)
            meter.finish()
            return
        }
        backend.closeFuture.assumeIsolated().whenComplete { _ in pool.closed(upstream) }
        backend.pipeline.syncOperations.removeHandler(upstream, promise: nil)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if let clientBytes, clientBytes.readableBytes > 0 {
            meter.count(clientBytes.readableBytes, from: .client)
            backend.writeAndFlush(NIOAny(clientBytes), promise: nil)
        }
        if clientInputClosed {
            backend.close(mode: .output, promise: nil)
        }
        meter.startIdleTimer(idleTimeout)
        // A read either HTTP handler held back (for backpressure, or while the response was awaited)
        // is the glue's to pass on now.
        context.channel.read()
        backend.read()
    }
}

extension HTTPProxyHandler: RemovableChannelHandler {}
