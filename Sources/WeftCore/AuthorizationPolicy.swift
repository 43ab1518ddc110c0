/// Which mesh identities may open streams to a service. A service that no policy selects accepts every
/// source; one that some policies select accepts only sources that a rule of one of them allows.
public struct AuthorizationPolicy: Resource {
    public static let resourceKind = ResourceKind.authorizationPolicy
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: AuthorizationPolicySpec

    public init(metadata: ObjectMeta, spec: AuthorizationPolicySpec) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
    }
}

public struct AuthorizationPolicySpec: Codable, Sendable, Hashable {
    /// The destination Service, in the policy's namespace.
    public var service: String
    /// A source is allowed when any rule matches it; an empty list allows no source (deny all).
    public var allow: [AuthorizationRule]

    public init(service: String, allow: [AuthorizationRule]) {
        self.service = service
        self.allow = allow
    }
}

/// One entry of `allow`. The fields that are given must all match; a rule with neither matches every
/// mesh identity, and no rule matches a source without one.
public struct AuthorizationRule: Codable, Sendable, Hashable {
    /// `name` or `namespace/name`. A bare name is in the policy's namespace, or, when `namespaces` is
    /// given too, in any of those namespaces.
    public var serviceAccounts: [String]?
    /// Any service account in these namespaces.
    public var namespaces: [String]?

    public init(serviceAccounts: [String]? = nil, namespaces: [String]? = nil) {
        self.serviceAccounts = serviceAccounts
        self.namespaces = namespaces
    }
}

/// An entry of `serviceAccounts` split at its slash: `cart` or `shop/cart`.
public struct ServiceAccountReference: Sendable, Hashable, CustomStringConvertible {
    /// Nil for a bare name.
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// Nil when `text` has more than one slash; the parts are not checked further.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1: self.init(namespace: nil, name: parts[0])
        case 2: self.init(namespace: parts[0], name: parts[1])
        default: return nil
        }
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }
}
