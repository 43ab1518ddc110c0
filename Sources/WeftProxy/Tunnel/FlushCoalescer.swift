import NIOCore

/// Sits under a tunnel connection's HTTP/2 handler and turns the flushes of many streams within one
/// event-loop turn into one: each stream's flush would otherwise seal its own TLS record and make its
/// own `write` system call. The single flush runs as a task at the end of the turn, after the loop has
/// handled every socket that was ready, so nothing waits longer than that turn.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any

    private var scheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            scheduled = false
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Whatever is pending goes out before the connection closes.
        if scheduled {
            scheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}

@available(*, unavailable)
extension FlushCoalescer: Sendable {}
