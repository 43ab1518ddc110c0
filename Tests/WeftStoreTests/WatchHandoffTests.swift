import Foundation
import Synchronization
import Testing

@testable import WeftStore

/// The switch from history to live, driven with a scripted history so the races that a real database
/// only rarely produces happen every time.
@Suite("Watch history-to-live handoff", .timeLimit(.minutes(1)))
struct WatchHandoffTests {
    /// A fake history: all events ever written, and the snapshot revision each successive read sees.
    final class ScriptedHistory: Sendable {
        let events: [WatchEvent]
        let snapshots: [Int64]
        let compacted: [Int64]
        private let reads = Mutex(0)

        init(events: [WatchEvent], snapshots: [Int64], compacted: [Int64] = []) {
            self.events = events
            self.snapshots = snapshots
            self.compacted = compacted
        }

        var readCount: Int { reads.withLock { $0 } }

        func read(after: Int64, limit: Int) -> HistoryPage {
            let call = reads.withLock { count in
                defer { count += 1 }
                return count
            }
            let snapshot = snapshots[min(call, snapshots.count - 1)]
            let compactedRevision = compacted.isEmpty ? 0 : compacted[min(call, compacted.count - 1)]
            let page = events.filter { $0.revision > after && $0.revision <= snapshot }.prefix(limit)
            return HistoryPage(events: Array(page), snapshotRevision: snapshot, compactedRevision: compactedRevision)
        }
    }

    static func event(_ revision: Int64) -> WatchEvent {
        let key = ObjectKey(kind: "Replica", namespace: "default", name: "r\(revision)")
        return WatchEvent(
            type: .added, revision: revision,
            object: StoredObject(key: key, revision: revision, createdRevision: revision, data: Data()))
    }

    static func session(
        hub: WatchHub, history: ScriptedHistory, after: Int64 = 0, pageSize: Int = 100, capacity: Int = 100
    ) -> WatchHandle {
        WatchHandle(
            WatchSession(
                id: hub.makeSessionID(), filter: WatchFilter(), after: after, capacity: capacity,
                pageSize: pageSize, hub: hub,
                readHistory: { _, after, limit in history.read(after: after, limit: limit) }))
    }

    static func take(_ count: Int, from handle: WatchHandle) async throws -> [Int64] {
        var revisions: [Int64] = []
        while revisions.count < count, let event = try await handle.session.next() {
            revisions.append(event.revision)
        }
        return revisions
    }

    @Test func eventsReadFromHistoryBeforeTheirPublishAreNotDeliveredTwice() async throws {
        // The reader already sees revisions 3 and 4, whose commits have not been published yet.
        let hub = WatchHub(revision: 2)
        let history = ScriptedHistory(events: (1...4).map(Self.event), snapshots: [4])
        let handle = Self.session(hub: hub, history: history)
        async let consumer = Self.take(5, from: handle)
        try await eventually("the session joined") { hub.watcherCount == 1 }
        hub.publish([Self.event(3)])
        hub.publish([Self.event(4)])
        hub.publish([Self.event(5)])
        #expect(try await consumer == [1, 2, 3, 4, 5])
    }

    @Test func aSessionBehindThePublishedRevisionReadsMoreHistoryBeforeJoining() async throws {
        // Revisions 5 and 6 were published after the first snapshot was taken.
        let hub = WatchHub(revision: 6)
        let history = ScriptedHistory(events: (1...6).map(Self.event), snapshots: [4, 6])
        let handle = Self.session(hub: hub, history: history)
        async let consumer = Self.take(7, from: handle)
        try await eventually("the session joined") { hub.watcherCount == 1 }
        #expect(history.readCount == 2)
        hub.publish([Self.event(7)])
        #expect(try await consumer == [1, 2, 3, 4, 5, 6, 7])
    }

    @Test func historyIsReadInPagesAtTheConsumersPace() async throws {
        let hub = WatchHub(revision: 5)
        let history = ScriptedHistory(events: (1...5).map(Self.event), snapshots: [5])
        let handle = Self.session(hub: hub, history: history, pageSize: 2)
        #expect(try await Self.take(2, from: handle) == [1, 2])
        #expect(history.readCount == 1)
        #expect(try await Self.take(3, from: handle) == [3, 4, 5])
        #expect(history.readCount == 3)
        #expect(hub.watcherCount == 0)  // joins only when it runs out of history
    }

    @Test func compactionDuringCatchUpEndsTheWatchWithCompacted() async throws {
        let hub = WatchHub(revision: 6)
        let history = ScriptedHistory(events: (1...6).map(Self.event), snapshots: [6], compacted: [0, 3])
        let handle = Self.session(hub: hub, history: history, pageSize: 2)
        #expect(try await Self.take(2, from: handle) == [1, 2])
        let error = await storeError { _ = try await handle.session.next() }
        #expect(error?.code == .compacted)
        #expect(try await handle.session.next() == nil)  // ended for good
    }
}
