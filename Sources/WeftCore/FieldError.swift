/// One problem with a manifest or request body: the field path where it is and the rule it breaks.
///
/// `path` uses the Kubernetes notation, e.g. `spec.template.spec.ports[0].containerPort`.
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Builds field paths such as `spec.ports[0].port` from path components.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public private(set) var components: [Component]

    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    public init(_ components: [Component] = []) { self.components = components }

    public init(codingPath: [any CodingKey]) {
        self.components = codingPath.map { key in
            if let i = key.intValue { return .index(i) }
            return .key(key.stringValue)
        }
    }

    public func child(_ key: String) -> FieldPath { FieldPath(components + [.key(key)]) }
    public func index(_ i: Int) -> FieldPath { FieldPath(components + [.index(i)]) }
    public static func / (lhs: FieldPath, rhs: String) -> FieldPath { lhs.child(rhs) }
    public subscript(i: Int) -> FieldPath { index(i) }

    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .key(let k): out += out.isEmpty ? k : ".\(k)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    /// An error at this path.
    public func error(_ message: String) -> FieldError { FieldError(path: description, message: message) }
}
