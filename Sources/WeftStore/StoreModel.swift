import Foundation

/// Identifies one stored object: its kind, its namespace (`""` for cluster-scoped kinds) and its name.
public struct ObjectKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The object's kind, for example `"Deployment"`.
    public var kind: String
    /// The namespace, or `""` for cluster-scoped kinds such as `Node`.
    public var namespace: String
    /// The object's name, unique within its kind and namespace.
    public var name: String

    /// Creates a key; pass `namespace: ""` for a cluster-scoped object.
    public init(kind: String, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `kind/namespace/name`, or `kind/name` when cluster-scoped.
    public var description: String {
        namespace.isEmpty ? "\(kind)/\(name)" : "\(kind)/\(namespace)/\(name)"
    }
}

/// One object as the store holds it: an opaque blob (JSON, parsed by the API layer) plus its revisions.
public struct StoredObject: Sendable, Equatable {
    /// Where the object lives.
    public var key: ObjectKey
    /// The revision of the object's last change; this is its resourceVersion.
    public var revision: Int64
    /// The revision at which the object was created.
    public var createdRevision: Int64
    /// The object's bytes, exactly as written.
    public var data: Data

    /// Creates a stored object value.
    public init(key: ObjectKey, revision: Int64, createdRevision: Int64, data: Data) {
        self.key = key
        self.revision = revision
        self.createdRevision = createdRevision
        self.data = data
    }
}

/// What happened to an object in a ``WatchEvent``.
public enum WatchEventType: String, Sendable, Codable {
    /// The object was created.
    case added = "ADDED"
    /// The object was updated.
    case modified = "MODIFIED"
    /// The object was deleted.
    case deleted = "DELETED"
}

/// One change, at one cluster revision.
public struct WatchEvent: Sendable, Equatable {
    /// What happened.
    public var type: WatchEventType
    /// The revision of this change; strictly increasing across the whole store.
    public var revision: Int64
    /// The new state, or for ``WatchEventType/deleted`` the last state with `revision` set to the delete's revision.
    public var object: StoredObject

    /// Creates an event value.
    public init(type: WatchEventType, revision: Int64, object: StoredObject) {
        self.type = type
        self.revision = revision
        self.object = object
    }
}

/// One write in a ``ObjectStore/commit(_:)`` batch; every write in a batch gets its own revision.
public enum Write: Sendable {
    /// Creates an object; fails with ``StoreError/Code/alreadyExists`` if it exists.
    case create(ObjectKey, Data)
    /// Replaces an existing object's data; fails with ``StoreError/Code/notFound`` if missing, and with
    /// ``StoreError/Code/conflict`` if `ifRevision` is given and differs from the object's revision.
    case update(ObjectKey, Data, ifRevision: Int64?)
    /// Deletes an existing object, with the same preconditions as `update`.
    case delete(ObjectKey, ifRevision: Int64?)

    /// The key this write touches.
    public var key: ObjectKey {
        switch self {
        case .create(let key, _), .update(let key, _, _), .delete(let key, _):
            return key
        }
    }
}

/// The store: a revisioned key-value map of opaque objects with an ordered, resumable change stream.
///
/// Implementations: ``SQLiteStore``; an etcd-backed one can follow the same contract.
public protocol ObjectStore: Sendable {
    /// Returns the object at `key`, or nil if there is none.
    func get(_ key: ObjectKey) async throws -> StoredObject?
    /// Lists the objects of one kind (in one namespace, or all when `namespace` is nil) from one consistent
    /// snapshot, together with the store revision of that snapshot (the point to watch from).
    func list(kind: String, namespace: String?) async throws -> (items: [StoredObject], revision: Int64)
    /// Applies all writes in one transaction, or none of them; returns one event per write.
    @discardableResult
    func commit(_ writes: [Write]) async throws -> [WatchEvent]
    /// The revision of the last committed change (0 for an empty store).
    func currentRevision() async throws -> Int64
    /// Streams every matching event with a revision greater than `revision`, history first, then live.
    func watch(kind: String?, namespace: String?, after revision: Int64) -> AsyncThrowingStream<WatchEvent, Error>
    /// Ends all watch streams and releases the storage.
    func close() async throws
}
