import Foundation
import WeftCore
import WeftPKI
import WeftStore

/// An ``ObjectStore`` that keeps Secrets encrypted (AES-256-GCM, ``SecretsKey``) in the store below it:
/// writes of kind Secret are sealed before they reach the store, and every read, commit result and watch
/// event is opened again, so the API, the controllers and watchers see plain objects while the database
/// file (and its event history) holds neither the values nor their base64. Other kinds pass through.
public struct SecretEncryptingStore: ObjectStore {
    public let base: any ObjectStore
    let key: SecretsKey

    public init(base: any ObjectStore, key: SecretsKey) {
        self.base = base
        self.key = key
    }

    static func isEncrypted(_ kind: String) -> Bool { kind == ResourceKind.secret.rawValue }

    /// The object's key as the authenticated context, so a sealed object cannot be moved to another key.
    static func context(_ key: ObjectKey) -> String { key.description }

    func seal(_ write: Write) throws -> Write {
        switch write {
        case .create(let objectKey, let data) where Self.isEncrypted(objectKey.kind):
            return .create(objectKey, try key.seal(data, context: Self.context(objectKey)))
        case .update(let objectKey, let data, let revision) where Self.isEncrypted(objectKey.kind):
            return .update(objectKey, try key.seal(data, context: Self.context(objectKey)), ifRevision: revision)
        default:
            return write
        }
    }

    func decrypted(_ object: StoredObject) throws -> StoredObject {
        guard Self.isEncrypted(object.key.kind) else { return object }
        var copy = object
        do {
            copy.data = try key.open(object.data, context: Self.context(object.key))
        } catch {
            throw StoreError(.io, key: object.key, message: "\(error)")
        }
        return copy
    }

    func decrypted(_ event: WatchEvent) throws -> WatchEvent {
        var copy = event
        copy.object = try decrypted(event.object)
        return copy
    }

    public func get(_ key: ObjectKey) async throws -> StoredObject? {
        try await base.get(key).map { try decrypted($0) }
    }

    public func list(kind: String, namespace: String?) async throws -> (items: [StoredObject], revision: Int64) {
        let (items, revision) = try await base.list(kind: kind, namespace: namespace)
        return (try items.map { try decrypted($0) }, revision)
    }

    @discardableResult
    public func commit(_ writes: [Write]) async throws -> [WatchEvent] {
        try await base.commit(try writes.map { try seal($0) }).map { try decrypted($0) }
    }

    public func currentRevision() async throws -> Int64 { try await base.currentRevision() }

    public func watch(kind: String?, namespace: String?, after revision: Int64) -> AsyncThrowingStream<WatchEvent, Error> {
        // Pulled one event at a time, so the store's own pacing (history pages, slow-watcher limit) holds.
        let events = EventIterator(base.watch(kind: kind, namespace: namespace, after: revision).makeAsyncIterator())
        return AsyncThrowingStream(unfolding: {
            guard let event = try await events.next() else { return nil }
            return try decrypted(event)
        })
    }

    public func close() async throws { try await base.close() }
}

/// The base store's watch iterator, advanced only by the one consumer of the stream that wraps it.
private final class EventIterator: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<WatchEvent, Error>.AsyncIterator

    init(_ iterator: AsyncThrowingStream<WatchEvent, Error>.AsyncIterator) { self.iterator = iterator }

    func next() async throws -> WatchEvent? { try await iterator.next() }
}
