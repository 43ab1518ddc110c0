import Synchronization
import WeftCore
import WeftProxy

/// A service, by namespace and name.
struct ServiceKey: Hashable, Sendable {
    var namespace: String
    var name: String
}

/// Decides, for the node's inbound tunnel, whether a stream may reach a local endpoint: the endpoint
/// must be one of this node's replicas serving some service.
final class MeshAuthorization: Sendable {
    private struct State {
        var localEndpoints: [String: [ServiceKey]] = [:]
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

    func decide(_ request: TunnelRequest) -> TunnelVerdict {
        let services = state.withLock { $0.localEndpoints[request.destination] }
        guard let services, !services.isEmpty else {
            return .unknownDestination("\(request.destination) is not an endpoint of a replica on node \(nodeName)")
        }
        return .allow
    }
}
