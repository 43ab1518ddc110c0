/// The API version every Weft manifest carries.
public let weftAPIVersion = "weft/v1"

/// The namespace used when a manifest or command names none.
public let defaultNamespace = "default"

/// The kinds of objects the API serves.
public enum ResourceKind: String, CaseIterable, Sendable, Codable {
    case deployment = "Deployment"
    case service = "Service"
    case replica = "Replica"
    case node = "Node"
    case endpoints = "Endpoints"
    case authorizationPolicy = "AuthorizationPolicy"
    case peerAuthentication = "PeerAuthentication"
    case configMap = "ConfigMap"
    case secret = "Secret"

    /// The lower-case plural used in API paths and on the command line (`deployments`).
    public var plural: String {
        switch self {
        case .deployment: return "deployments"
        case .service: return "services"
        case .replica: return "replicas"
        case .node: return "nodes"
        case .endpoints: return "endpoints"
        case .authorizationPolicy: return "authorizationpolicies"
        case .peerAuthentication: return "peerauthentications"
        case .configMap: return "configmaps"
        case .secret: return "secrets"
        }
    }

    /// Whether objects of this kind live in a namespace (nodes do not).
    public var isNamespaced: Bool { self != .node }

    /// Whether users create and change objects of this kind (the rest are made by Weft).
    public var isUserManaged: Bool {
        switch self {
        case .deployment, .service, .authorizationPolicy, .peerAuthentication, .configMap, .secret: return true
        case .replica, .node, .endpoints: return false
        }
    }

    /// The names accepted on the command line for this kind: plural, singular and short names.
    public var aliases: [String] {
        switch self {
        case .deployment: return ["deployments", "deployment", "deploy"]
        case .service: return ["services", "service", "svc"]
        case .replica: return ["replicas", "replica", "rep"]
        case .node: return ["nodes", "node", "no"]
        case .endpoints: return ["endpoints", "endpoint", "ep"]
        case .authorizationPolicy: return ["authorizationpolicies", "authorizationpolicy", "authz"]
        case .peerAuthentication: return ["peerauthentications", "peerauthentication", "peerauth"]
        case .configMap: return ["configmaps", "configmap", "cm"]
        case .secret: return ["secrets", "secret"]
        }
    }

    /// Finds a kind by any of its names, its plural or its `kind:` spelling (case-insensitive).
    public init?(name: String) {
        let lowered = name.lowercased()
        guard let kind = ResourceKind.allCases.first(where: { $0.aliases.contains(lowered) || $0.rawValue.lowercased() == lowered }) else {
            return nil
        }
        self = kind
    }
}
