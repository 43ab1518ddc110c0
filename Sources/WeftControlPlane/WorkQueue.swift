import Logging
import ServiceLifecycle
import Synchronization
import WeftStore

/// The key controllers queue: an object's namespace and name.
struct NamespacedName: Hashable, Sendable, CustomStringConvertible {
    var namespace: String
    var name: String

    var description: String { "\(namespace)/\(name)" }
}

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

extension WorkQueue {
    /// The loop every controller runs: follows the store's changes after `revision`, queues the keys each
    /// change concerns, and reconciles queued keys one at a time until graceful shutdown. A reconcile that
    /// fails is logged and its key queued again after `retryDelay`.
    func run(following store: any ObjectStore, after revision: Int64, logger: Logger, retryDelay: Duration,
             keys: @escaping @Sendable (WatchEvent) async throws -> [Key],
             reconcile: @escaping @Sendable (Key) async throws -> Void) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for try await event in store.watch(kind: nil, namespace: nil, after: revision).cancelOnGracefulShutdown() {
                    for key in try await keys(event) { self.add(key) }
                }
                self.finish()
            }
            group.addTask {
                for await _ in self.wakeups.cancelOnGracefulShutdown() {
                    for key in self.drain() {
                        do {
                            try await reconcile(key)
                        } catch {
                            logger.warning("reconcile failed; retrying", metadata: ["key": "\(key)", "error": "\(error)"])
                            try? await Task.sleep(for: retryDelay)
                            self.add(key)
                        }
                    }
                }
            }
        }
    }
}
