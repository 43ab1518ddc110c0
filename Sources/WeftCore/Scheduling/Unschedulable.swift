/// One of the scheduler's filters: a rule a node must pass to take a replica.
public struct SchedulingFilter: Sendable, Hashable, CustomStringConvertible {
    /// A short stable name, e.g. `NodeResourcesFit`.
    public let name: String
    /// How `weft describe` words the nodes this filter turned down, after their count.
    public let reason: String
    /// Position in the order filters are applied.
    let order: Int

    public static let nodeReady = SchedulingFilter(name: "NodeReady", reason: "node(s) were not ready", order: 0)
    public static let nodeUnschedulable = SchedulingFilter(name: "NodeUnschedulable", reason: "node(s) were unschedulable", order: 1)
    public static let nodeSelector = SchedulingFilter(name: "NodeSelector", reason: "node(s) didn't match nodeSelector", order: 2)
    public static let taints = SchedulingFilter(name: "TaintToleration", reason: "node(s) had untolerated taint(s)", order: 3)
    public static let cpu = SchedulingFilter(name: "NodeResourcesFit/cpu", reason: "insufficient cpu", order: 4)
    public static let memory = SchedulingFilter(name: "NodeResourcesFit/memory", reason: "insufficient memory", order: 5)
    public static let hostPorts = SchedulingFilter(name: "NodePorts", reason: "node(s) didn't have free ports for the requested host ports", order: 6)

    public static let all: [SchedulingFilter] = [.nodeReady, .nodeUnschedulable, .nodeSelector, .taints, .cpu, .memory, .hostPorts]

    public var description: String { name }
}

/// Why no node can take a replica: how many nodes each filter turned down (each node counted once,
/// under the first filter it failed), in Kubernetes' words:
/// `0/5 nodes available: 3 insufficient cpu, 2 node(s) didn't match nodeSelector`.
public struct Unschedulable: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nodes considered.
    public var nodes: Int
    /// Nodes turned down per filter, most first, then in filter order; filters that turned none down are left out.
    public var rejections: [(filter: SchedulingFilter, nodes: Int)] {
        counts.filter { $0.value > 0 }.map { ($0.key, $0.value) }.sorted { a, b in
            a.nodes != b.nodes ? a.nodes > b.nodes : a.filter.order < b.filter.order
        }
    }

    var counts: [SchedulingFilter: Int]

    public init(nodes: Int, counts: [SchedulingFilter: Int]) {
        self.nodes = nodes
        self.counts = counts
    }

    /// Nodes `filter` turned down.
    public func count(_ filter: SchedulingFilter) -> Int { counts[filter] ?? 0 }

    public var description: String {
        if nodes == 0 { return "0/0 nodes available: no nodes are registered" }
        return "0/\(nodes) nodes available: " + rejections.map { "\($0.nodes) \($0.filter.reason)" }.joined(separator: ", ")
    }
}
