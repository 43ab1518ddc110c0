import Foundation
import Testing

@testable import WeftStore

@Suite("SQLiteStore watch", .timeLimit(.minutes(1)))
struct StoreWatchTests {
    @Test func watchFromZeroReplaysHistoryThenStreamsLive() async throws {
        try await withStore { store in
            let web = key("Deployment", "default", "web")
            try await store.commit([.create(web, blob("1"))])
            try await store.commit([.update(web, blob("2"), ifRevision: 1)])
            try await store.commit([.create(key("Service", "default", "web"), blob("s"))])

            // `async let` rather than `Task`: if the test times out, cancellation reaches the consumer.
            async let consumer = take(5, from: store.watch(kind: nil, namespace: nil, after: 0))
            // Only commit once the watcher has switched to live delivery, so the live path is what's tested.
            try await eventually("the watcher is live") { store.liveWatcherCount == 1 }
            try await store.commit([.delete(web, ifRevision: 2), .create(key("Node", "", "n1"), blob("n"))])

            let events = try await consumer
            #expect(events.map(\.revision) == [1, 2, 3, 4, 5])
            #expect(events.map(\.type) == [.added, .modified, .added, .deleted, .added])
            #expect(events[3].object == StoredObject(key: web, revision: 4, createdRevision: 1, data: blob("2")))
            #expect(events[4].object.key == key("Node", "", "n1"))
        }
    }

    @Test func resumingFromTheMiddleReplaysExactlyWhatWasMissed() async throws {
        try await withStore { store in
            for index in 1...10 {
                try await store.commit([.create(key("Replica", "default", "r\(index)"), blob("\(index)"))])
            }
            let stream = store.watch(kind: nil, namespace: nil, after: 6)
            var iterator = stream.makeAsyncIterator()
            var missed: [Int64] = []
            for _ in 0..<4 {
                missed.append(try #require(try await iterator.next()).revision)
            }
            #expect(missed == [7, 8, 9, 10])

            // The next event is the next commit: nothing replayed twice, nothing skipped.
            try await store.commit([.create(key("Replica", "default", "r11"), Data())])
            let next = try await iterator.next()
            #expect(next?.revision == 11)
            #expect(next?.object.key.name == "r11")
        }
    }

    @Test func watchingFromACompactedRevisionThrowsCompacted() async throws {
        try await withStore(retainedEvents: 5) { store in
            for index in 1...20 {
                try await store.commit([.create(key("Replica", "default", "r\(index)"), Data())])
            }
            // Commits compact on their own, in small steps beyond the retained count.
            let automatic = try await store.compactedRevision()
            #expect((14...15).contains(automatic))

            try await store.compact()
            #expect(try await store.compactedRevision() == 15)

            let tooOld = await storeError { _ = try await take(1, from: store.watch(kind: nil, namespace: nil, after: 14)) }
            #expect(tooOld?.code == .compacted)
            let fromZero = await storeError { _ = try await take(1, from: store.watch(kind: "Replica", namespace: nil, after: 0)) }
            #expect(fromZero?.code == .compacted)

            let oldestResumable = try await take(5, from: store.watch(kind: nil, namespace: nil, after: 15))
            #expect(oldestResumable.map(\.revision) == [16, 17, 18, 19, 20])

            // Objects are not affected by compaction.
            #expect(try await store.list(kind: "Replica", namespace: nil).items.count == 20)
        }
    }

    @Test func filtersByKindAndNamespace() async throws {
        try await withStore { store in
            try await store.commit([
                .create(key("Deployment", "a", "web"), Data()),  // 1
                .create(key("Deployment", "b", "web"), Data()),  // 2
                .create(key("Service", "a", "web"), Data()),  // 3
                .create(key("Node", "", "n1"), Data()),  // 4
            ])
            async let deployments = take(3, from: store.watch(kind: "Deployment", namespace: nil, after: 0))
            async let namespaceA = take(3, from: store.watch(kind: nil, namespace: "a", after: 0))
            async let nodes = take(2, from: store.watch(kind: "Node", namespace: "", after: 0))
            async let deploymentsInB = take(2, from: store.watch(kind: "Deployment", namespace: "b", after: 0))
            try await eventually("all watchers are live") { store.liveWatcherCount == 4 }
            try await store.commit([
                .create(key("Service", "b", "api"), Data()),  // 5
                .update(key("Deployment", "a", "web"), Data(), ifRevision: 1),  // 6
                .delete(key("Node", "", "n1"), ifRevision: nil),  // 7
                .delete(key("Deployment", "b", "web"), ifRevision: nil),  // 8
            ])
            #expect(try await deployments.map(\.revision) == [1, 2, 6])
            #expect(try await namespaceA.map(\.revision) == [1, 3, 6])
            #expect(try await nodes.map(\.revision) == [4, 7])
            #expect(try await deploymentsInB.map(\.revision) == [2, 8])
        }
    }

    @Test func concurrentCommitsReachEveryWatcherInOrderWithoutGaps() async throws {
        let writers = 8
        let commitsPerWriter = 40
        try await withStore { store in
            // Watchers started before and during the writes, so some switch from history to live mid-stream.
            let total = writers * commitsPerWriter * 3 / 2  // every other commit writes two objects
            let perKind = total / 2
            async let allKinds = take(total, from: store.watch(kind: nil, namespace: nil, after: 0))
            async let even = take(perKind, from: store.watch(kind: "Even", namespace: nil, after: 0))
            async let odd = take(perKind, from: store.watch(kind: "Odd", namespace: "ns", after: 0))

            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        let kind = writer % 2 == 0 ? "Even" : "Odd"
                        for index in 0..<commitsPerWriter {
                            let first = key(kind, "ns", "w\(writer)-\(index)")
                            if index % 2 == 0 {
                                try await store.commit([.create(first, blob("\(index)"))])
                            } else {
                                try await store.commit([
                                    .create(first, blob("\(index)")),
                                    .create(key(kind, "ns", "w\(writer)-\(index)-b"), Data()),
                                ])
                            }
                        }
                    }
                }
                group.addTask {
                    // A late watcher that catches up while writes are still going on.
                    try await eventually("some writes happened") { try await store.currentRevision() > 50 }
                    let late = try await take(total, from: store.watch(kind: nil, namespace: nil, after: 0))
                    #expect(late.map(\.revision) == Array(1...Int64(total)))
                }
                try await group.waitForAll()
            }

            let results = try await [allKinds, even, odd]
            let all = results[0]
            #expect(all.map(\.revision) == Array(1...Int64(total)))
            #expect(results[1].map(\.revision) == all.filter { $0.object.key.kind == "Even" }.map(\.revision))
            #expect(results[2].map(\.revision) == all.filter { $0.object.key.kind == "Odd" }.map(\.revision))
            #expect(results[1].count == perKind)
            #expect(results[2].count == perKind)
            #expect(try await store.currentRevision() == Int64(total))
        }
    }

    @Test func closeFinishesWatchStreams() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory.appendingPathComponent("store.sqlite").path)
            try await store.commit([.create(key("Node", "", "n1"), Data())])
            async let consumer = drain(store.watch(kind: nil, namespace: nil, after: 0))
            try await eventually("the watcher is live") { store.liveWatcherCount == 1 }
            try await store.close()
            let (revisions, error) = await consumer
            #expect(revisions == [1])
            #expect(error == nil)  // ended normally
            #expect(store.liveWatcherCount == 0)
        }
    }

    @Test func aWatcherThatFallsBehindIsEndedWithCompacted() async throws {
        try await withStore(watchBufferLimit: 4) { store in
            async let consumer = drain(store.watch(kind: nil, namespace: nil, after: 0))
            try await eventually("the watcher is live") { store.liveWatcherCount == 1 }
            // One transaction of ten events is offered at once, more than the watcher may buffer.
            try await store.commit((1...10).map { .create(key("Replica", "default", "r\($0)"), Data()) })

            let (revisions, error) = await consumer
            #expect(revisions == [1, 2, 3, 4])  // what was buffered is still delivered, then the error
            #expect((error as? StoreError)?.code == .compacted)
            #expect(store.liveWatcherCount == 0)
            // Writers were not blocked and other watchers are unaffected.
            #expect(try await take(10, from: store.watch(kind: nil, namespace: nil, after: 0)).count == 10)
        }
    }

    @Test func cancellingOrDroppingAWatchRemovesTheWatcher() async throws {
        try await withStore { store in
            let cancelled = Task {
                for try await _ in store.watch(kind: nil, namespace: nil, after: 0) {}
            }
            try await eventually("the first watcher is live") { store.liveWatcherCount == 1 }
            cancelled.cancel()
            _ = await cancelled.result
            try await eventually("the cancelled watcher is gone") { store.liveWatcherCount == 0 }

            async let dropped = firstRevision(of: store.watch(kind: nil, namespace: nil, after: 0))
            try await eventually("the second watcher is live") { store.liveWatcherCount == 1 }
            try await store.commit([.create(key("Node", "", "n1"), Data())])
            #expect(try await dropped == 1)
            try await eventually("the dropped watcher is gone") { store.liveWatcherCount == 0 }
        }
    }
}

/// Everything a stream yields until it ends, and the error it ended with, if any.
private func drain(_ stream: AsyncThrowingStream<WatchEvent, Error>) async -> ([Int64], Error?) {
    var revisions: [Int64] = []
    do {
        for try await event in stream {
            revisions.append(event.revision)
        }
        return (revisions, nil)
    } catch {
        return (revisions, error)
    }
}

/// Leaves the loop after the first event, which drops the stream without cancelling anything.
private func firstRevision(of stream: AsyncThrowingStream<WatchEvent, Error>) async throws -> Int64? {
    for try await event in stream {
        return event.revision
    }
    return nil
}
