import Foundation
import Synchronization

/// Which events a watcher wants: one kind or all (`nil`), one namespace or all (`nil`).
struct WatchFilter: Sendable {
    var kind: String?
    var namespace: String?

    func matches(_ key: ObjectKey) -> Bool {
        (kind == nil || kind == key.kind) && (namespace == nil || namespace == key.namespace)
    }
}

/// One page of retained history, read from a single database snapshot.
struct HistoryPage: Sendable {
    /// Matching events with revision greater than the requested one, in revision order.
    var events: [WatchEvent]
    /// The store revision of the snapshot the page was read from.
    var snapshotRevision: Int64
    /// Events at or below this revision are gone from the snapshot.
    var compactedRevision: Int64
}

/// Reads one page of matching history after a revision, at most `limit` events.
typealias HistoryReader = @Sendable (_ filter: WatchFilter, _ after: Int64, _ limit: Int) async throws -> HistoryPage

/// The live fan-out: the registry of watchers that have caught up with history.
///
/// `publish` is only called from inside the database writer's serial queue, right after each transaction
/// commits, so every watcher is offered events in strictly increasing revision order.
final class WatchHub: Sendable {
    private struct State {
        /// Revision of the last event handed to `publish`.
        var lastPublished: Int64
        var sessions: [UInt64: WatchSession] = [:]
        /// No more joins; set when the store starts closing.
        var closed = false
    }

    private let state: Mutex<State>
    private let nextID = Atomic<UInt64>(1)

    init(revision: Int64) {
        state = Mutex(State(lastPublished: revision))
    }

    func makeSessionID() -> UInt64 {
        nextID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    enum JoinResult {
        /// The session now receives every published event.
        case joined
        /// Events after the session's revision were already published; read more history first.
        case behind
        /// The store is closing.
        case closed
    }

    /// Registers `session` for live events if nothing after `revision` has been published yet.
    ///
    /// The check and the registration happen under one lock, so no event falls between history and live.
    func join(_ session: WatchSession, after revision: Int64) -> JoinResult {
        state.withLock { state in
            if state.closed { return .closed }
            if state.lastPublished > revision { return .behind }
            state.sessions[session.id] = session
            return .joined
        }
    }

    func leave(_ id: UInt64) {
        _ = state.withLock { $0.sessions.removeValue(forKey: id) }
    }

    /// Offers a committed transaction's events to every watcher; returns how many watchers were dropped
    /// because their buffer overflowed.
    @discardableResult
    func publish(_ events: [WatchEvent]) -> Int {
        guard let last = events.last else { return 0 }
        return state.withLock { state in
            state.lastPublished = last.revision
            var dropped: [UInt64] = []
            for (id, session) in state.sessions where !session.offer(events) {
                dropped.append(id)
            }
            for id in dropped {
                state.sessions.removeValue(forKey: id)
            }
            return dropped.count
        }
    }

    /// Refuses new joins; already joined watchers keep receiving events until `finishAll`.
    func shutDown() {
        state.withLock { $0.closed = true }
    }

    /// Ends every joined watcher's stream normally (after it has drained what it already buffered).
    func finishAll() {
        let sessions = state.withLock { state in
            state.closed = true
            let sessions = Array(state.sessions.values)
            state.sessions = [:]
            return sessions
        }
        for session in sessions {
            session.finish()
        }
    }

    var isClosed: Bool {
        state.withLock { $0.closed }
    }

    var watcherCount: Int {
        state.withLock { $0.sessions.count }
    }
}

/// One watch stream's state: first it pulls retained history page by page (the consumer's pace is the
/// backpressure), then it joins the hub and drains a bounded queue of live events.
final class WatchSession: Sendable {
    private enum Phase {
        case catchingUp
        case live
        case done
    }

    private enum Ending {
        case finished
        case failed(StoreError)
    }

    private struct State {
        var phase: Phase = .catchingUp
        /// Every matching event at or below `cursor` has been read from history.
        var cursor: Int64
        var page: [WatchEvent] = []
        var pageIndex = 0
        /// The current page was the last one of its snapshot, and `cursor` is that snapshot's revision.
        var reachedSnapshot = false
        /// Live events at or below this were already delivered from history.
        var floor: Int64 = 0
        var queue: [WatchEvent] = []
        var queueHead = 0
        var ending: Ending?
        var waiter: CheckedContinuation<Void, Never>?

        var queuedCount: Int { queue.count - queueHead }

        mutating func popQueue() -> WatchEvent? {
            guard queueHead < queue.count else { return nil }
            let event = queue[queueHead]
            queueHead += 1
            if queueHead == queue.count {
                queue.removeAll(keepingCapacity: true)
                queueHead = 0
            } else if queueHead >= 1024 && queueHead * 2 >= queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            return event
        }
    }

    private enum Step {
        case deliver(WatchEvent)
        case end
        case fail(StoreError)
        case readPage(after: Int64)
        case join(after: Int64)
        case wait
    }

    let id: UInt64
    let filter: WatchFilter
    private let capacity: Int
    private let pageSize: Int
    private let hub: WatchHub
    private let readHistory: HistoryReader
    private let state: Mutex<State>

    init(
        id: UInt64,
        filter: WatchFilter,
        after revision: Int64,
        capacity: Int,
        pageSize: Int,
        hub: WatchHub,
        readHistory: @escaping HistoryReader
    ) {
        self.id = id
        self.filter = filter
        self.capacity = max(1, capacity)
        self.pageSize = max(1, pageSize)
        self.hub = hub
        self.readHistory = readHistory
        self.state = Mutex(State(cursor: max(0, revision)))
    }

    /// The next event, nil when the stream ended normally; meant for one consumer at a time.
    func next() async throws -> WatchEvent? {
        while true {
            switch nextStep() {
            case .deliver(let event):
                return event
            case .end:
                hub.leave(id)
                return nil
            case .fail(let error):
                hub.leave(id)
                throw error
            case .readPage(let after):
                try await readPage(after: after)
            case .join(let after):
                switch hub.join(self, after: after) {
                case .joined:
                    state.withLock { state in
                        if case .catchingUp = state.phase { state.phase = .live }
                    }
                case .behind:
                    state.withLock { $0.reachedSnapshot = false }
                case .closed:
                    state.withLock { $0.phase = .done }
                }
            case .wait:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let ready = state.withLock { state in
                            if state.queuedCount > 0 || state.ending != nil {
                                return true
                            }
                            state.waiter = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    self.cancel()
                }
            }
        }
    }

    private func nextStep() -> Step {
        state.withLock { state in
            switch state.phase {
            case .done:
                return .end
            case .catchingUp:
                if let ending = state.ending {
                    state.phase = .done
                    if case .failed(let error) = ending { return .fail(error) }
                    return .end
                }
                if state.pageIndex < state.page.count {
                    let event = state.page[state.pageIndex]
                    state.pageIndex += 1
                    return .deliver(event)
                }
                if state.reachedSnapshot {
                    // Set before joining: the hub may offer events before `join` returns.
                    state.floor = state.cursor
                    return .join(after: state.cursor)
                }
                return .readPage(after: state.cursor)
            case .live:
                // Drain what is buffered first, also after an overflow or close: those events are valid.
                if let event = state.popQueue() {
                    return .deliver(event)
                }
                switch state.ending {
                case nil:
                    return .wait
                case .finished:
                    state.phase = .done
                    return .end
                case .failed(let error):
                    state.phase = .done
                    return .fail(error)
                }
            }
        }
    }

    private func readPage(after cursor: Int64) async throws {
        if hub.isClosed || Task.isCancelled {
            state.withLock { $0.phase = .done }
            return
        }
        let page: HistoryPage
        do {
            page = try await readHistory(filter, cursor, pageSize)
        } catch {
            state.withLock { $0.phase = .done }
            if hub.isClosed || Task.isCancelled { return }
            hub.leave(id)
            throw error
        }
        if cursor < page.compactedRevision {
            state.withLock { $0.phase = .done }
            throw StoreError(
                .compacted,
                message: "history after revision \(cursor) is compacted (oldest retained revision is "
                    + "\(page.compactedRevision + 1)); re-list and watch from the list's revision")
        }
        state.withLock { state in
            state.page = page.events
            state.pageIndex = 0
            if page.events.count < pageSize {
                state.cursor = max(cursor, page.snapshotRevision)
                state.reachedSnapshot = true
            } else {
                state.cursor = page.events[page.events.count - 1].revision
                state.reachedSnapshot = false
            }
        }
    }

    /// Queues the matching events of one committed transaction; returns false if this watcher must be
    /// dropped (its buffer overflowed or its consumer went away).
    func offer(_ events: [WatchEvent]) -> Bool {
        let (waiter, keep): (CheckedContinuation<Void, Never>?, Bool) = state.withLock { state in
            if state.ending != nil { return (nil, false) }
            var added = false
            for event in events where event.revision > state.floor && filter.matches(event.object.key) {
                if state.queuedCount >= capacity {
                    state.ending = .failed(
                        StoreError(
                            .compacted,
                            message: "watch fell more than \(capacity) events behind and was ended; "
                                + "re-list and watch from the list's revision"))
                    let waiter = state.waiter
                    state.waiter = nil
                    return (waiter, false)
                }
                state.queue.append(event)
                added = true
            }
            guard added, let waiter = state.waiter else { return (nil, true) }
            state.waiter = nil
            return (waiter, true)
        }
        waiter?.resume()
        return keep
    }

    /// Ends the stream normally once the buffered events are consumed (store closing).
    func finish() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.ending == nil { state.ending = .finished }
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// The consumer went away (task cancelled or stream dropped): drop everything and leave the hub.
    func cancel() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.ending = .finished
            state.queue = []
            state.queueHead = 0
            state.page = []
            state.pageIndex = 0
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
        hub.leave(id)
    }
}

/// Owned only by the stream's closure, so that dropping the stream (for example `break` out of a
/// `for try await` loop) removes the watcher even without task cancellation.
final class WatchHandle: Sendable {
    let session: WatchSession

    init(_ session: WatchSession) {
        self.session = session
    }

    deinit {
        session.cancel()
    }
}
