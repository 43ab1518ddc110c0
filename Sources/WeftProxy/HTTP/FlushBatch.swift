import NIOCore

/// The flushes of an event loop's HTTP connections, done together at the end of the loop's turn:
/// after the loop has handled every socket that was ready, as HAProxy sends at the end of its polling
/// loop. The number of `write` system calls does not change (one per connection with bytes to send),
/// but they leave in one burst, so a client or backend that sleeps in `epoll_wait` wakes once for many
/// of them instead of once each. Nothing waits longer than the current turn.
///
/// Used only on its event loop (owned by the loop's `UpstreamPool`), so it needs no lock.
final class FlushBatch {
    private let loop: any EventLoop
    private var pending: [ChannelHandlerContext] = []
    /// The array being flushed, kept for its capacity.
    private var spare: [ChannelHandlerContext] = []
    private var scheduled = false

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Made once, so scheduling it allocates no closure per turn.
    private lazy var flushAll: () -> Void = { [unowned self] in
        scheduled = false
        swap(&pending, &spare)
        for context in spare { context.flush() }
        spare.removeAll(keepingCapacity: true)
    }

    /// Flushes `context` at the end of this turn (a connection may be added more than once).
    func add(_ context: ChannelHandlerContext) {
        pending.append(context)
        guard !scheduled else { return }
        scheduled = true
        loop.assumeIsolated().execute(flushAll)
    }
}

@available(*, unavailable)
extension FlushBatch: Sendable {}
