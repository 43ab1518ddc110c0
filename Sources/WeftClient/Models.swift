import WeftCore

/// A list answer: the objects as JSON and the revision to start a watch from.
public struct ObjectList: Sendable, Equatable, Decodable {
    public var items: [JSONValue]
    public var resourceVersion: String

    public init(items: [JSONValue], resourceVersion: String) {
        self.items = items
        self.resourceVersion = resourceVersion
    }
}

/// One line of a watch stream, untyped: `ADDED`, `MODIFIED`, `DELETED` or `BOOKMARK`, and the object.
public struct WatchEventJSON: Sendable, Equatable, Decodable {
    public var type: String
    public var object: JSONValue

    public init(type: String, object: JSONValue) {
        self.type = type
        self.object = object
    }

    /// `object.metadata.resourceVersion`, present on every event including bookmarks.
    public var resourceVersion: String? { object["metadata"]?["resourceVersion"]?.stringValue }
}

/// One change of a watched kind, decoded; a bookmark carries only the revision to resume from.
public enum WatchEvent<T: Resource>: Sendable {
    case added(T)
    case modified(T)
    case deleted(T)
    case bookmark(String)
}
