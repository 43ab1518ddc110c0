/// A node as the scheduler sees it: whether it takes replicas, its labels and taints, its capacity.
public struct SchedulingNode: Sendable, Hashable {
    /// The node label that names its zone; replicas of a deployment are spread across zones first.
    public static let zoneLabel = "topology.weft.io/zone"

    public var name: String
    public var ready: Bool
    /// Cordoned: takes no new replicas.
    public var unschedulable: Bool
    public var labels: [String: String]
    public var taints: [Taint]
    /// CPU capacity in millicores; nil when the node does not report one (then CPU is not limited).
    public var cpuMillicores: Int64?
    /// Memory capacity in bytes; nil when the node does not report one (then memory is not limited).
    public var memoryBytes: Int64?
    /// Whether replicas share the node's network, so that two replicas cannot hold the same host port.
    /// True for every node of the process driver.
    public var sharedNetwork: Bool

    public init(name: String, ready: Bool = true, unschedulable: Bool = false, labels: [String: String] = [:], taints: [Taint] = [],
                cpuMillicores: Int64? = nil, memoryBytes: Int64? = nil, sharedNetwork: Bool = true) {
        self.name = name
        self.ready = ready
        self.unschedulable = unschedulable
        self.labels = labels
        self.taints = taints
        self.cpuMillicores = cpuMillicores
        self.memoryBytes = memoryBytes
        self.sharedNetwork = sharedNetwork
    }

    /// The scheduler's view of a registered node. Malformed capacities count as not reported.
    public init(_ node: Node) {
        self.init(name: node.name, ready: node.status?.ready ?? false, unschedulable: node.spec?.unschedulable ?? false,
                  labels: node.metadata.labels ?? [:], taints: node.spec?.taints ?? [],
                  cpuMillicores: node.status?.capacity?.cpu.flatMap(Quantity.millicores).map(Int64.init),
                  memoryBytes: node.status?.capacity?.memory.flatMap(Quantity.bytes))
    }

    public var zone: String { labels[Self.zoneLabel] ?? "" }
}

/// A port a replica holds on its node's own network, with its protocol.
public struct HostPort: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var port: Int
    /// `TCP` or `UDP`.
    public var `protocol`: String

    public init(port: Int, protocol: String = "TCP") {
        self.port = port
        self.protocol = `protocol`
    }

    public static func < (a: HostPort, b: HostPort) -> Bool { (a.port, a.protocol) < (b.port, b.protocol) }

    public var description: String { "\(port)/\(`protocol`)" }

    /// One number per port and protocol, for the node's set of ports in use.
    var packed: UInt32 { UInt32(port) | (`protocol` == "UDP" ? 1 << 16 : 0) }
}

/// What one replica asks of a node.
public struct PlacementRequest: Sendable, Hashable {
    /// Replicas with the same key are spread across nodes and zones: `namespace/deployment`.
    public var spreadKey: String
    public var cpuMillicores: Int64
    public var memoryBytes: Int64
    /// Labels the node must have.
    public var nodeSelector: [String: String]
    public var tolerations: [Toleration]
    /// Ports the replica binds on a shared-network node.
    public var hostPorts: [HostPort]

    public init(spreadKey: String, cpuMillicores: Int64 = 0, memoryBytes: Int64 = 0, nodeSelector: [String: String] = [:],
                tolerations: [Toleration] = [], hostPorts: [HostPort] = []) {
        self.spreadKey = spreadKey
        self.cpuMillicores = cpuMillicores
        self.memoryBytes = memoryBytes
        self.nodeSelector = nodeSelector
        self.tolerations = tolerations
        self.hostPorts = hostPorts
    }

    /// The request of a replica of `workload`. Resource requests default to the limits when only those
    /// are given (as in Kubernetes) and to zero otherwise; every declared `hostPort` is a host port.
    public init(spreadKey: String, workload: WorkloadSpec) {
        let resources = workload.resources
        let cpu = (resources?.requests?.cpu ?? resources?.limits?.cpu).flatMap(Quantity.millicores) ?? 0
        let memory = (resources?.requests?.memory ?? resources?.limits?.memory).flatMap(Quantity.bytes) ?? 0
        self.init(spreadKey: spreadKey, cpuMillicores: Int64(cpu), memoryBytes: memory,
                  nodeSelector: workload.nodeSelector ?? [:], tolerations: workload.tolerations ?? [],
                  hostPorts: (workload.ports ?? []).compactMap { port in
                      port.hostPort.map { HostPort(port: $0, protocol: port.protocol ?? "TCP") }
                  })
    }

    /// The request of an existing replica, spread with the other replicas of its deployment.
    public init(_ replica: Replica) {
        self.init(spreadKey: Self.spreadKey(namespace: replica.namespace, deployment: replica.spec.deployment), workload: replica.spec.template)
    }

    public static func spreadKey(namespace: String, deployment: String) -> String { "\(namespace)/\(deployment)" }
}
