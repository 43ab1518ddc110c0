import Foundation
import Testing

@testable import WeftStore

@Suite("SQLiteStore objects, revisions and files")
struct StoreObjectTests {
    @Test func createGetListUpdateDelete() async throws {
        try await withStore { store in
            #expect(try await store.currentRevision() == 0)
            let web = key("Deployment", "default", "web")
            let api = key("Deployment", "default", "api")
            let other = key("Deployment", "other", "web")
            let node = key("Node", "", "n1")

            let created = try await store.commit([
                .create(web, blob("web-1")), .create(api, blob("api-1")),
                .create(other, blob("other-1")), .create(node, blob("node-1")),
            ])
            #expect(created.map(\.revision) == [1, 2, 3, 4])
            #expect(created.allSatisfy { $0.type == .added })
            #expect(created[0].object == StoredObject(key: web, revision: 1, createdRevision: 1, data: blob("web-1")))

            #expect(try await store.get(web) == StoredObject(key: web, revision: 1, createdRevision: 1, data: blob("web-1")))
            #expect(try await store.get(node)?.data == blob("node-1"))
            #expect(try await store.get(key("Deployment", "default", "missing")) == nil)

            let all = try await store.list(kind: "Deployment", namespace: nil)
            #expect(all.items.map(\.key) == [api, web, other])  // by namespace, then name
            #expect(all.revision == 4)
            let inDefault = try await store.list(kind: "Deployment", namespace: "default")
            #expect(inDefault.items.map(\.key) == [api, web])
            #expect(try await store.list(kind: "Node", namespace: "").items.map(\.key) == [node])
            #expect(try await store.list(kind: "Service", namespace: nil).items.isEmpty)

            let updated = try await store.commit([.update(web, blob("web-2"), ifRevision: 1)])
            #expect(updated.count == 1)
            #expect(updated[0].type == .modified)
            #expect(updated[0].object == StoredObject(key: web, revision: 5, createdRevision: 1, data: blob("web-2")))
            #expect(try await store.get(web) == updated[0].object)

            // A byte-identical update is still a change with its own revision; the caller decides to skip it.
            let same = try await store.commit([.update(web, blob("web-2"), ifRevision: nil)])
            #expect(same[0].revision == 6)

            let deleted = try await store.commit([.delete(web, ifRevision: 6)])
            #expect(deleted[0].type == .deleted)
            #expect(deleted[0].object == StoredObject(key: web, revision: 7, createdRevision: 1, data: blob("web-2")))
            #expect(try await store.get(web) == nil)
            #expect(try await store.list(kind: "Deployment", namespace: "default").items.map(\.key) == [api])
            #expect(try await store.currentRevision() == 7)

            // Recreating after delete starts a new life with a new createdRevision.
            let again = try await store.commit([.create(web, Data())])
            #expect(try await store.get(web) == StoredObject(key: web, revision: 8, createdRevision: 8, data: Data()))
            #expect(again[0].object.data.isEmpty)
        }
    }

    @Test func preconditionsFailWithTheirCodes() async throws {
        try await withStore { store in
            let web = key("Deployment", "default", "web")
            let missing = key("Deployment", "default", "missing")
            try await store.commit([.create(web, blob("v1"))])

            let exists = await storeError { try await store.commit([.create(web, blob("again"))]) }
            #expect(exists?.code == .alreadyExists)
            #expect(exists?.key == web)

            #expect(await storeError { try await store.commit([.update(missing, blob("x"), ifRevision: nil)]) }?.code == .notFound)
            #expect(await storeError { try await store.commit([.delete(missing, ifRevision: nil)]) }?.code == .notFound)

            let stale = await storeError { try await store.commit([.update(web, blob("v2"), ifRevision: 7)]) }
            #expect(stale?.code == .conflict)
            #expect(stale?.key == web)
            #expect(await storeError { try await store.commit([.delete(web, ifRevision: 0)]) }?.code == .conflict)

            #expect(await storeError { try await store.commit([.create(key("", "x", "y"), Data())]) }?.code == .invalidArgument)
            #expect(await storeError { try await store.commit([.create(key("Node", "", ""), Data())]) }?.code == .invalidArgument)

            #expect(try await store.get(web) == StoredObject(key: web, revision: 1, createdRevision: 1, data: blob("v1")))
            #expect(try await store.currentRevision() == 1)
        }
    }

    @Test func aFailedBatchWritesNothing() async throws {
        try await withStore { store in
            let a = key("Service", "default", "a")
            let b = key("Service", "default", "b")
            let c = key("Service", "default", "c")
            try await store.commit([.create(c, blob("c1"))])

            let error = await storeError {
                try await store.commit([
                    .create(a, blob("a1")),
                    .update(c, blob("c2"), ifRevision: 1),
                    .delete(c, ifRevision: nil),
                    .update(b, blob("b1"), ifRevision: nil),  // b does not exist: the whole batch fails
                ])
            }
            #expect(error?.code == .notFound)
            #expect(error?.key == b)
            #expect(try await store.get(a) == nil)
            #expect(try await store.get(c) == StoredObject(key: c, revision: 1, createdRevision: 1, data: blob("c1")))
            #expect(try await store.currentRevision() == 1)

            // No event of the failed batch reached the history: the next event after 1 is the next commit.
            try await store.commit([.create(b, blob("b1"))])
            let events = try await take(1, from: store.watch(kind: nil, namespace: nil, after: 1))
            #expect(events.map(\.revision) == [2])
            #expect(events.first?.object.key == b)

            // Within a batch, later writes see earlier ones.
            let batch = try await store.commit([
                .create(a, blob("a1")), .update(a, blob("a2"), ifRevision: 3), .delete(a, ifRevision: 4),
            ])
            #expect(batch.map(\.revision) == [3, 4, 5])
            #expect(batch.map(\.type) == [.added, .modified, .deleted])
            #expect(batch.map(\.object.createdRevision) == [3, 3, 3])
            #expect(try await store.get(a) == nil)
        }
    }

    @Test func revisionsAndHistorySurviveReopen() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("store.sqlite").path
            let first = try SQLiteStore(path: path)
            var revisions: [Int64] = []
            for index in 0..<5 {
                let events = try await first.commit([.create(key("Replica", "default", "r\(index)"), blob("\(index)"))])
                revisions.append(contentsOf: events.map(\.revision))
            }
            let deletion = try await first.commit([.delete(key("Replica", "default", "r0"), ifRevision: 1)])
            revisions.append(deletion[0].revision)
            #expect(revisions == [1, 2, 3, 4, 5, 6])
            let before = try await first.list(kind: "Replica", namespace: nil)
            try await first.close()

            let second = try SQLiteStore(path: path)
            #expect(try await second.currentRevision() == 6)
            let after = try await second.list(kind: "Replica", namespace: nil)
            #expect(after.items == before.items)
            #expect(after.revision == before.revision)

            let resumed = try await take(4, from: second.watch(kind: nil, namespace: nil, after: 2))
            #expect(resumed.map(\.revision) == [3, 4, 5, 6])
            #expect(resumed.last?.type == .deleted)
            #expect(resumed.last?.object == StoredObject(
                key: key("Replica", "default", "r0"), revision: 6, createdRevision: 1, data: blob("0")))

            let next = try await second.commit([.create(key("Replica", "default", "r9"), Data())])
            #expect(next[0].revision == 7)
            try await second.close()
        }
    }

    @Test func closedStoreRefusesWork() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory.appendingPathComponent("store.sqlite").path)
            try await store.commit([.create(key("Node", "", "n1"), Data())])
            try await store.close()
            try await store.close()  // idempotent
            #expect(await storeError { _ = try await store.get(key("Node", "", "n1")) }?.code == .closed)
            #expect(await storeError { try await store.commit([.create(key("Node", "", "n2"), Data())]) }?.code == .closed)
            #expect(await storeError { _ = try await store.currentRevision() }?.code == .closed)
            #expect(await storeError { _ = try await take(1, from: store.watch(kind: nil, namespace: nil, after: 0)) }?.code == .closed)
        }
    }

    @Test func databaseFilesAreOwnerOnly() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("store.sqlite").path
            func mode(_ path: String) throws -> Int {
                try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            }

            let store = try SQLiteStore(path: path)
            try await store.commit([.create(key("Node", "", "n1"), blob("{}"))])
            #expect(try mode(path) == 0o600)
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                #expect(try mode(path + suffix) == 0o600, "\(suffix)")
            }
            try await store.close()

            // A file someone left world-readable is tightened on open.
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            let reopened = try SQLiteStore(path: path)
            #expect(try mode(path) == 0o600)
            #expect(try await reopened.get(key("Node", "", "n1"))?.data == blob("{}"))
            try await reopened.close()
        }
    }
}
