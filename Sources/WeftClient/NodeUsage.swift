import WeftCore

/// What the replicas bound to a node take of it, as the scheduler counts it: CPU and memory requests
/// (terminating replicas included, as their processes may still hold them) and the replicas that are not
/// terminating.
public struct NodeUsage: Sendable, Equatable {
    public var cpuMillicores: Int64
    public var memoryBytes: Int64
    public var replicas: Int

    public init(cpuMillicores: Int64 = 0, memoryBytes: Int64 = 0, replicas: Int = 0) {
        self.cpuMillicores = cpuMillicores
        self.memoryBytes = memoryBytes
        self.replicas = replicas
    }

    /// The usage of every node in `nodes`.
    public static func of(nodes: [Node], replicas: [Replica]) -> [String: NodeUsage] {
        let scheduler = Scheduler(nodes: nodes, replicas: replicas)
        var usage: [String: NodeUsage] = [:]
        for node in nodes {
            let allocated = scheduler.allocated(on: node.name) ?? (0, 0)
            usage[node.name] = NodeUsage(cpuMillicores: allocated.cpuMillicores, memoryBytes: allocated.memoryBytes,
                                         replicas: replicas.filter { $0.spec.node == node.name && !$0.isTerminating }.count)
        }
        return usage
    }

    /// `cpu=1500m,memory=256Mi`.
    public var allocatedText: String {
        "cpu=\(Self.cpuText(cpuMillicores)),memory=\(Self.memoryText(memoryBytes))"
    }

    /// Millicores as a quantity: `2`, `1500m`.
    public static func cpuText(_ millicores: Int64) -> String {
        millicores % 1000 == 0 ? "\(millicores / 1000)" : "\(millicores)m"
    }

    /// Bytes as a quantity in the largest binary unit that divides them: `8Gi`, `256Mi`, `1000`.
    public static func memoryText(_ bytes: Int64) -> String {
        for (suffix, factor) in [("Ti", Int64(1) << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] where bytes != 0 && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)"
    }
}
