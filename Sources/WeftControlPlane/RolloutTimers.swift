import Foundation
import Synchronization
import WeftCore

/// Wake-ups of single keys at a due time (a timed pause's end, an analysis interval's end): each queues its
/// key once, so a controller looks again exactly when something is due instead of polling every object.
final class WakeTimers<Key: Hashable & Sendable>: Sendable {
    private struct Timer {
        var at: Date
        var id: UInt64
        var task: Task<Void, Never>
    }

    private let timers = Mutex<(byKey: [Key: Timer], nextID: UInt64)>(([:], 0))
    private let queue: WorkQueue<Key>

    init(queue: WorkQueue<Key>) { self.queue = queue }

    /// Queues `key` at `date` (at once if it has passed). A wake-up already due no later is kept: the
    /// reconcile it causes schedules the next one.
    func schedule(_ key: Key, at date: Date) {
        timers.withLock { state in
            if let existing = state.byKey[key], existing.at <= date { return }
            state.byKey[key]?.task.cancel()
            state.nextID += 1
            let id = state.nextID
            let delay = max(0, date.timeIntervalSinceNow)
            let task = Task { [weak self] in
                // A few milliseconds late rather than early: the reconcile compares the time with the due time.
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000) + 5))
                guard !Task.isCancelled, let self else { return }
                self.fired(key, id: id)
            }
            state.byKey[key] = Timer(at: date, id: id, task: task)
        }
    }

    private func fired(_ key: Key, id: UInt64) {
        let current = timers.withLock { state in
            guard state.byKey[key]?.id == id else { return false }
            state.byKey[key] = nil
            return true
        }
        if current { queue.add(key) }
    }

    /// Stops every pending wake-up (the controller is stopping).
    func cancelAll() {
        let tasks = timers.withLock { state in
            defer { state.byKey = [:] }
            return state.byKey.values.map(\.task)
        }
        for task in tasks { task.cancel() }
    }
}

/// One open analysis interval of a canary: the traffic counters at its start.
struct AnalysisWindow: Sendable, Equatable {
    var canary: String
    var start: Date
    var end: Date
    var snapshot: TrafficSnapshot
}

/// The open analysis interval per deployment.
final class AnalysisWindows: Sendable {
    private let windows = Mutex<[NamespacedName: AnalysisWindow]>([:])

    func get(_ key: NamespacedName) -> AnalysisWindow? { windows.withLock { $0[key] } }

    /// Keeps `window` for `key`; nil forgets it.
    func set(_ key: NamespacedName, _ window: AnalysisWindow?) { windows.withLock { $0[key] = window } }

    func remove(_ key: NamespacedName) { set(key, nil) }
}
