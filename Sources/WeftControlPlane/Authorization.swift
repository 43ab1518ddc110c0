import WeftCore
import WeftPKI

/// Who sent a request, as its bearer token says.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    /// The cluster token from `admin.yaml`: everything.
    case admin
    /// A node credential (`weftnode1.<node>.<secret>`): what that node's agent needs, nothing more.
    case node(String)
    /// A join token: only `POST /api/v1/join`.
    case joinToken(id: String)

    public var description: String {
        switch self {
        case .admin: return "the admin credentials"
        case .node(let name): return "the node credential of \"\(name)\""
        case .joinToken(let id): return "join token \(id)"
        }
    }
}

/// What each credential may do (docs/api.md#credentials). Default deny for nodes: a route a node needs
/// is listed here. Pure; the routes that depend on an object (a replica's node, a certificate's identity)
/// are answered `checkObject`, and their handlers check with ``Principal/mayChange(_:)`` and
/// ``Principal/mayRequest(identity:)``.
enum AccessPolicy {
    enum Decision: Equatable {
        case allow
        /// Allowed if the object it concerns belongs to the principal; the handler checks.
        case checkObject
        case deny(code: Int, message: String)
    }

    /// `path` is the request path after `/api/v1/`, split at `/`; `route` names the request in
    /// refusals ("GET /api/v1/…" when not given).
    static func decide(_ principal: Principal, method: String, path: [Substring], route: String? = nil) -> Decision {
        let route = route ?? "\(method) /api/v1/\(path.joined(separator: "/"))"
        let isJoin = method == "POST" && path == ["join"]
        switch principal {
        case .admin:
            return isJoin ? .deny(code: 403, message: "POST /api/v1/join takes a join token (`weft token create`), not the admin credentials") : .allow
        case .joinToken(let id):
            return isJoin ? .allow : .deny(code: 401, message: "join token \(id) authenticates only POST /api/v1/join, not \(route); use a node credential or admin.yaml")
        case .node(let node):
            if isJoin {
                return .deny(code: 403, message: "POST /api/v1/join takes a join token, not a node credential: node \"\(node)\" has joined already")
            }
            if path.first == "tokens" {
                return .deny(code: 403, message: "\(principal) may not \(route): join tokens are managed with the admin credentials (admin.yaml)")
            }
            switch (method, path.count) {
            case ("GET", 4) where path[0] == "namespaces" && path[2] == ResourceKind.secret.plural:
                // Only Secrets that replicas assigned to this node use (``Principal/mayRead(secret:)``).
                return .checkObject
            case ("GET", _) where path.last == Substring(ResourceKind.secret.plural):
                return .deny(code: 403, message: "\(principal) may not list or watch Secrets; it reads one at a time those its replicas use")
            case ("GET", _):
                return .allow
            case ("PUT", 2) where path[0] == "nodes":
                return path[1] == node ? .allow
                    : .deny(code: 403, message: "\(principal) may register and renew only node \"\(node)\", not \"\(path[1])\"")
            case ("PUT", 5) where path[0] == "namespaces" && path[2] == "replicas" && path[4] == "status",
                 ("DELETE", 4) where path[0] == "namespaces" && path[2] == "replicas",
                 ("POST", 1) where path[0] == "certificates":
                return .checkObject
            default:
                return .deny(code: 403, message: "\(principal) may not \(route): a node reads cluster objects, renews its own Node, reports and removes the replicas assigned to it and gets certificates; use the admin credentials (admin.yaml)")
            }
        }
    }
}

extension Principal {
    /// Whether this principal may report the status of, or remove, `replica`: the admin any, a node only
    /// those assigned to it.
    func mayChange(_ replica: Replica) throws {
        switch self {
        case .admin:
            return
        case .node(let node) where replica.spec.node == node:
            return
        case .node, .joinToken:
            let place = replica.spec.node.isEmpty ? "is not assigned to a node" : "is assigned to node \"\(replica.spec.node)\""
            throw APIFailure(code: 403, message: "\(self) may not change replica \(replica.namespace)/\(replica.name), which \(place)")
        }
    }

    /// Whether this principal may have `identity` certified: the admin any, a node its own node identity
    /// and workload identities (for the replicas it runs), never another node's. An identity that does not
    /// parse is left to the signer, which answers 422.
    func mayRequest(identity: String) throws {
        switch self {
        case .admin:
            return
        case .node(let node):
            guard let id = try? SPIFFEID(parsing: identity) else { return }
            let segments = id.path.split(separator: "/")
            if segments.first == "node" && !(segments.count == 2 && segments[1] == node) {
                throw APIFailure(code: 403, message: "\(self) may not get a certificate for \(identity): only for spiffe://\(id.trustDomain)/node/\(node) and workloads")
            }
        case .joinToken:
            throw APIFailure(code: 403, message: "\(self) may not get certificates; it joins with POST /api/v1/join")
        }
    }
}
