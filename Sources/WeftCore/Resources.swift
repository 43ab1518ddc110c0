/// Identity and bookkeeping every object carries, as in Kubernetes.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    /// Set by the server on create.
    public var uid: String?
    /// Set by the server: the store revision of the object's last change.
    public var resourceVersion: String?
    /// Set by the server: increases when the spec changes.
    public var generation: Int?
    /// Set by the server on create (RFC 3339).
    public var creationTimestamp: String?
    /// Set by the server when a graceful delete has begun.
    public var deletionTimestamp: String?

    public init(name: String, namespace: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
    }
}

/// An object of one of the API's kinds.
public protocol Resource: Codable, Sendable, Equatable {
    static var resourceKind: ResourceKind { get }
    var apiVersion: String { get set }
    var kind: String { get set }
    var metadata: ObjectMeta { get set }
}

extension Resource {
    /// The namespace, defaulted; `""` for cluster-scoped kinds.
    public var namespace: String {
        Self.resourceKind.isNamespaced ? (metadata.namespace ?? defaultNamespace) : ""
    }
    public var name: String { metadata.name }
    /// The resource version as a number (0 when unset).
    public var revision: Int64 { Int64(metadata.resourceVersion ?? "") ?? 0 }
}

/// A label query over objects; every listed label must match.
public struct LabelSelector: Codable, Sendable, Hashable {
    public var matchLabels: [String: String]?

    public init(matchLabels: [String: String]? = nil) { self.matchLabels = matchLabels }

    /// Whether `labels` satisfy the selector. An empty selector matches nothing, as a safety net.
    public func matches(_ labels: [String: String]?) -> Bool {
        guard let required = matchLabels, !required.isEmpty else { return false }
        let labels = labels ?? [:]
        return required.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// A port referred to by number or by the name of a declared port (Kubernetes' IntOrString).
public enum PortReference: Codable, Sendable, Hashable, CustomStringConvertible {
    case number(Int)
    case name(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(Int.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = Int(s).map(PortReference.number) ?? .name(s)
        } else {
            throw DecodingError.typeMismatch(PortReference.self, .init(codingPath: decoder.codingPath, debugDescription: "must be a port number or a port name"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let n): try container.encode(n)
        case .name(let s): try container.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .number(let n): return String(n)
        case .name(let s): return s
        }
    }
}
