import Foundation
import WeftCore
import WeftStore

/// Converts between typed resources and the store's opaque JSON blobs.
///
/// The store keeps each object without `metadata.resourceVersion`; it is filled in from the store
/// revision whenever an object is read, so it can never disagree with the store.
enum ResourceCodec {
    static func key(_ kind: ResourceKind, namespace: String, name: String) -> ObjectKey {
        ObjectKey(kind: kind.rawValue, namespace: kind.isNamespaced ? namespace : "", name: name)
    }

    static func key<T: Resource>(of object: T) -> ObjectKey {
        key(T.resourceKind, namespace: object.namespace, name: object.name)
    }

    static func encode<T: Resource>(_ object: T) throws -> Data {
        var copy = object
        copy.metadata.resourceVersion = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(copy)
    }

    static func decode<T: Resource>(_ type: T.Type, from stored: StoredObject) throws -> T {
        var object = try JSONDecoder().decode(T.self, from: stored.data)
        object.metadata.resourceVersion = String(stored.revision)
        return object
    }

    /// The object as JSON with its resource version set.
    static func json(_ stored: StoredObject) throws -> JSONValue {
        guard case .object(var members) = try JSONValue.parse(stored.data) else { return .null }
        if case .object(var metadata) = members["metadata"] ?? .object([:]) {
            metadata["resourceVersion"] = .string(String(stored.revision))
            members["metadata"] = .object(metadata)
        }
        return .object(members)
    }

    static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(.iso8601)
    }
}
