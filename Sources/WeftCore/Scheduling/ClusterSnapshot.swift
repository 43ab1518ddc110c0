extension Scheduler {
    /// A scheduler over the registered `nodes` with the requests of the `replicas` bound to them already
    /// allocated. A terminating replica keeps its resources and host ports until it is gone (its process
    /// may still hold them), but no longer counts toward its deployment's spread.
    public init(nodes: [Node], replicas: [Replica], policy: SchedulingPolicy = .leastAllocated) {
        self.init(nodes: nodes.map(SchedulingNode.init), policy: policy)
        for replica in replicas where !replica.spec.node.isEmpty {
            record(PlacementRequest(replica), on: replica.spec.node, countingTowardSpread: !replica.isTerminating)
        }
    }
}
