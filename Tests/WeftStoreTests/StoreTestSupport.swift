import Foundation
import Testing

@testable import WeftStore

/// A fresh directory under the system temporary directory, removed after `body`, also when it throws.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("weft-store-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// A store in a fresh temporary directory, closed and removed after `body`.
func withStore<T>(
    retainedEvents: Int = 100_000,
    watchBufferLimit: Int = 10_000,
    _ body: (SQLiteStore) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let store = try SQLiteStore(
            path: directory.appendingPathComponent("store.sqlite").path,
            retainedEvents: retainedEvents,
            watchBufferLimit: watchBufferLimit)
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }
}

func key(_ kind: String, _ namespace: String, _ name: String) -> ObjectKey {
    ObjectKey(kind: kind, namespace: namespace, name: name)
}

func blob(_ text: String) -> Data {
    Data(text.utf8)
}

/// Reads exactly `count` events (fewer only if the stream ends first).
func take(_ count: Int, from stream: AsyncThrowingStream<WatchEvent, Error>) async throws -> [WatchEvent] {
    var events: [WatchEvent] = []
    var iterator = stream.makeAsyncIterator()
    while events.count < count, let event = try await iterator.next() {
        events.append(event)
    }
    return events
}

/// Polls `condition` every millisecond; records an issue if it stays false for five seconds.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    for _ in 0..<5_000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("timed out waiting until \(what)")
}

/// Runs `body` and returns the StoreError it throws; records an issue if it throws something else or nothing.
func storeError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> StoreError? {
    do {
        try await body()
        Issue.record("expected a StoreError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
