/// An error from the store: a code to branch on, the key involved if any, and a message for people.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; a struct so new codes can be added without breaking callers' switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A create found an object already at the key.
        public static let alreadyExists = Code("alreadyExists")
        /// An update or delete found no object at the key.
        public static let notFound = Code("notFound")
        /// A precondition on the object's revision failed: someone else changed it first; re-read and retry.
        public static let conflict = Code("conflict")
        /// The requested history is gone (compacted, or the watcher fell too far behind); re-list and watch
        /// from the list's revision.
        public static let compacted = Code("compacted")
        /// The store was closed.
        public static let closed = Code("closed")
        /// The database failed (disk, corruption, permissions).
        public static let io = Code("io")
        /// A caller passed something the store cannot hold (for example an empty kind or name).
        public static let invalidArgument = Code("invalidArgument")

        /// The code's name, for example `conflict`.
        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// The object involved, if the error is about one.
    public var key: ObjectKey?
    /// What happened and what to do about it.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, key: ObjectKey? = nil, message: String) {
        self.code = code
        self.key = key
        self.message = message
    }

    /// `code (key): message`.
    public var description: String {
        if let key {
            return "\(code) (\(key)): \(message)"
        }
        return "\(code): \(message)"
    }
}
