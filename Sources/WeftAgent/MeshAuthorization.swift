import Synchronization
import WeftCore
import WeftPKI
import WeftProxy

/// A service, by namespace and name.
struct ServiceKey: Hashable, Sendable {
    var namespace: String
    var name: String
}

/// Decides, for the node's inbound tunnel, whether a stream may reach a local endpoint: the endpoint
/// must be one of this node's replicas, and every service it serves must admit the source under the
/// cluster's AuthorizationPolicies and PeerAuthentications (so a policy on one service is not
/// side-stepped through another service that selects the same replica).
final class MeshAuthorization: Sendable {
    private struct State {
        var localEndpoints: [String: [ServiceKey]] = [:]
        var table = AuthorizationTable()
    }

    let nodeName: String
    let trustDomain: String?
    private let state = Mutex(State())

    init(nodeName: String, trustDomain: String?) {
        self.nodeName = nodeName
        self.trustDomain = trustDomain
    }

    func update(localEndpoints: [String: [ServiceKey]]) {
        state.withLock { $0.localEndpoints = localEndpoints }
    }

    func update(table: AuthorizationTable) {
        state.withLock { $0.table = table }
    }

    /// Whether streams to `service` must pass through a node's inbound port even from its own node:
    /// a policy selects it, or its namespace is strict.
    static func isProtected(_ service: ServiceKey, by table: AuthorizationTable) -> Bool {
        table.isStrict(namespace: service.namespace) || table.hasPolicies(namespace: service.namespace, service: service.name)
    }

    func decide(_ request: TunnelRequest) -> TunnelVerdict {
        let (services, table) = state.withLock { ($0.localEndpoints[request.destination], $0.table) }
        guard let services, !services.isEmpty else {
            return .unknownDestination("\(request.destination) is not an endpoint of a replica on node \(nodeName)")
        }
        let principal = request.source.flatMap(Self.principal)
        for service in services {
            if case .deny(let reason) = table.decide(namespace: service.namespace, service: service.name, source: principal) {
                return .deny(reason)
            }
        }
        return .allow
    }

    /// The namespace and service account of a workload SPIFFE ID.
    static func principal(_ id: SPIFFEID) -> SourcePrincipal? {
        id.workload.map { SourcePrincipal(namespace: $0.namespace, serviceAccount: $0.serviceAccount) }
    }
}
