import Synchronization

/// A set of keys waiting to be reconciled. Adding a key that is already waiting does nothing, so a burst
/// of watch events for one object causes one reconcile.
final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    private let state = Mutex<(pending: [Key], queued: Set<Key>)>(([], []))
    private let wake: AsyncStream<Void>.Continuation
    let wakeups: AsyncStream<Void>

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func add(_ key: Key) {
        let added = state.withLock { state in
            guard state.queued.insert(key).inserted else { return false }
            state.pending.append(key)
            return true
        }
        if added { wake.yield() }
    }

    /// Takes every waiting key, oldest first.
    func drain() -> [Key] {
        state.withLock { state in
            defer { state = ([], []) }
            return state.pending
        }
    }

    func finish() { wake.finish() }
}
