/// The ready replicas behind a service, kept by the control plane and streamed to every node's proxy
/// (Kubernetes' Endpoints). Named like its service; read-only to users.
public struct Endpoints: Resource {
    public static let resourceKind = ResourceKind.endpoints
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    /// One entry per ready replica, sorted by replica name.
    public var endpoints: [Endpoint]
    /// Shares of traffic per revision while a canary runs (the canary's weight and the stable version's
    /// remainder): proxies first choose a revision by these weights, then an endpoint of that revision.
    /// Nil: every endpoint is a candidate for every request.
    public var split: [TrafficWeight]?

    public init(metadata: ObjectMeta, endpoints: [Endpoint], split: [TrafficWeight]? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.endpoints = endpoints
        self.split = split
    }
}

/// One revision's share of a service's traffic.
public struct TrafficWeight: Codable, Sendable, Hashable {
    /// A template hash (`Endpoint.revision`).
    public var revision: String
    /// 0–100.
    public var weight: Int

    public init(revision: String, weight: Int) {
        self.revision = revision
        self.weight = weight
    }
}

/// One replica's addresses for a service.
public struct Endpoint: Codable, Sendable, Hashable {
    public var replica: String
    public var node: String
    public var ip: String
    /// The replica's port for each service port, keyed by the service port number (as text).
    public var ports: [String: Int]
    /// Share of new traffic relative to the other endpoints (default 100).
    public var weight: Int?
    /// The replica's template hash: the version its requests are counted under.
    public var revision: String?

    public init(replica: String, node: String, ip: String, ports: [String: Int], weight: Int? = nil, revision: String? = nil) {
        self.replica = replica
        self.node = node
        self.ip = ip
        self.ports = ports
        self.weight = weight
        self.revision = revision
    }
}

extension Endpoints {
    /// The endpoints of `service`: every ready, non-terminating replica in its namespace whose labels match
    /// its selector and that has every target port the service names. Replicas on `unavailableNodes`
    /// (NotReady: their last reported status cannot be trusted) are left out whatever they last reported.
    public static func compute(for service: Service, replicas: [Replica], unavailableNodes: Set<String> = []) -> [Endpoint] {
        let selector = LabelSelector(matchLabels: service.spec.selector)
        var result: [Endpoint] = []
        for replica in replicas where replica.namespace == service.namespace && replica.isReady && !unavailableNodes.contains(replica.spec.node)
            && selector.matches(replica.metadata.labels) {
            guard let ip = replica.status?.address else { continue }
            var ports: [String: Int] = [:]
            for port in service.spec.ports {
                if let target = targetPort(port, of: replica) { ports[String(port.port)] = target }
            }
            guard ports.count == service.spec.ports.count else { continue }
            result.append(Endpoint(replica: replica.name, node: replica.spec.node, ip: ip, ports: ports, revision: replica.spec.templateHash))
        }
        return result.sorted { $0.replica < $1.replica }
    }

    /// The replica port a service port sends to: a named target port is looked up among the replica's
    /// allocated ports; a number is the declared port with that `containerPort`, or the number itself.
    static func targetPort(_ port: ServicePort, of replica: Replica) -> Int? {
        let allocated = replica.status?.ports ?? [:]
        switch port.targetPort ?? .number(port.port) {
        case .name(let name):
            return allocated[name]
        case .number(let number):
            if let declared = replica.spec.template.ports?.first(where: { $0.containerPort == number }) {
                return allocated[declared.name]
            }
            return number
        }
    }
}

extension Endpoints {
    /// The traffic split of `service` while a canary of a deployment behind it runs (its template labels
    /// match the service's selector, status.rollout names a canary revision): the canary revision gets the
    /// rollout's weight, the stable revision the rest. A revision with none of `endpoints` gives its share
    /// to the other, so no request is sent to a revision that cannot answer it (a canary whose replicas
    /// are not ready yet). Nil when no canary runs.
    public static func split(for service: Service, deployments: [Deployment], endpoints: [Endpoint]) -> [TrafficWeight]? {
        let selector = LabelSelector(matchLabels: service.spec.selector)
        let running = deployments
            .filter { $0.namespace == service.namespace && selector.matches($0.spec.template.metadata?.labels) }
            .sorted { $0.name < $1.name }
        for deployment in running {
            guard let rollout = deployment.status?.rollout, let canary = rollout.canaryRevision, let stable = rollout.stableRevision,
                  (0...100).contains(rollout.weight) else { continue }
            let revisions = Set(endpoints.compactMap(\.revision))
            var weight = rollout.weight
            if !revisions.contains(canary) && revisions.contains(stable) { weight = 0 }
            if !revisions.contains(stable) && revisions.contains(canary) { weight = 100 }
            return [TrafficWeight(revision: canary, weight: weight), TrafficWeight(revision: stable, weight: 100 - weight)]
        }
        return nil
    }
}
