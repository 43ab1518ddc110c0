/// How the scheduler ranks the nodes that tie on spread.
public enum SchedulingPolicy: String, Sendable, CaseIterable {
    /// Prefer the node with the smallest share of its CPU and memory requested (default): spreads load.
    case leastAllocated
    /// Prefer the node with the largest share requested that still fits (bin-packing): keeps nodes free.
    case mostAllocated
}

/// Places replicas on nodes: filters, then scores, as Kubernetes' scheduler does. Pure and deterministic.
///
/// Filters: node ready and not cordoned, `nodeSelector`, taints and tolerations, CPU and memory requests
/// fit, host ports free on shared-network nodes. Among the nodes that pass, the one chosen has, in order:
/// the fewest replicas of the same deployment on the node, the fewest of them in its zone
/// (`topology.weft.io/zone`; nodes without the label share one zone), the best allocation score for the
/// policy, and the smallest name.
///
/// Node spread comes before zone spread so that no node takes a second replica of a deployment while
/// another feasible node has none: replicas land in different zones as long as each zone has a node
/// without one, and a deployment larger than a small zone puts its extra replicas on other zones' nodes
/// instead of stacking them on the small zone's few nodes.
///
/// Built for thousands of nodes: node state is kept as parallel arrays indexed by node, the filters that
/// do not depend on allocations are bit sets computed once per kind of request, and each placement updates
/// allocations in place.
public struct Scheduler: Sendable {
    public let policy: SchedulingPolicy
    /// The nodes, sorted by name; indexes below refer to this order.
    public let nodeNames: [String]
    private let indexByName: [String: Int]

    private enum State: UInt8 { case schedulable, notReady, cordoned }
    private let state: [State]
    private let zoneOf: [Int32]
    private let zoneCount: Int
    /// label key → value → nodes with that label.
    private let labelMasks: [String: [String: NodeMask]]
    /// Distinct taint lists; index 0 is the empty list.
    private let taintSets: [[Taint]]
    private let taintSetMasks: [NodeMask]
    private let taintSetOf: [Int32]
    private let cpuCapacity: [Int64]
    private let memoryCapacity: [Int64]
    private let cpuInverse: [Double]
    private let memoryInverse: [Double]
    private let sharedNetwork: [Bool]
    private let schedulableMask: NodeMask

    private var cpuAllocated: [Int64]
    private var memoryAllocated: [Int64]
    /// Host ports in use per node (`HostPort.packed`); empty sets cost no allocation.
    private var portsInUse: [Set<UInt32>]
    private var spreads: [String: Spread] = [:]
    private var eligibility: [Constraints: NodeMask] = [:]

    /// Replicas of one deployment per node and per zone.
    private struct Spread {
        var perNode: [Int32]
        var perZone: [Int32]
    }

    /// The parts of a request the allocation-independent filters look at.
    private struct Constraints: Hashable {
        var nodeSelector: [String: String]
        var tolerations: [Toleration]
    }

    public init(nodes: [SchedulingNode], policy: SchedulingPolicy = .leastAllocated) {
        var seen = Set<String>()
        let nodes = nodes.sorted { $0.name < $1.name }.filter { seen.insert($0.name).inserted }
        let count = nodes.count
        self.policy = policy
        nodeNames = nodes.map(\.name)
        indexByName = Dictionary(uniqueKeysWithValues: nodeNames.enumerated().map { ($1, $0) })
        state = nodes.map { !$0.ready ? .notReady : $0.unschedulable ? .cordoned : .schedulable }

        var zones: [String: Int32] = [:]
        zoneOf = nodes.map { node in
            let zone = node.zone
            if let index = zones[zone] { return index }
            let index = Int32(zones.count)
            zones[zone] = index
            return index
        }
        zoneCount = zones.count

        var labelMasks: [String: [String: NodeMask]] = [:]
        var taintSetIndex: [[Taint]: Int32] = [[]: 0]
        var taintSets: [[Taint]] = [[]]
        var taintSetOf: [Int32] = []
        taintSetOf.reserveCapacity(count)
        for (i, node) in nodes.enumerated() {
            for (key, value) in node.labels {
                labelMasks[key, default: [:]][value, default: NodeMask(count: count, allSet: false)][i] = true
            }
            let taints = node.taints.sorted { ($0.key, $0.value ?? "", $0.effect) < ($1.key, $1.value ?? "", $1.effect) }
            if let index = taintSetIndex[taints] {
                taintSetOf.append(index)
            } else {
                let index = Int32(taintSets.count)
                taintSetIndex[taints] = index
                taintSets.append(taints)
                taintSetOf.append(index)
            }
        }
        var taintSetMasks = Array(repeating: NodeMask(count: count, allSet: false), count: taintSets.count)
        for (i, set) in taintSetOf.enumerated() { taintSetMasks[Int(set)][i] = true }
        self.labelMasks = labelMasks
        self.taintSets = taintSets
        self.taintSetMasks = taintSetMasks
        self.taintSetOf = taintSetOf

        cpuCapacity = nodes.map { $0.cpuMillicores ?? .max }
        memoryCapacity = nodes.map { $0.memoryBytes ?? .max }
        cpuInverse = nodes.map { node in node.cpuMillicores.map { $0 > 0 ? 1 / Double($0) : 0 } ?? 0 }
        memoryInverse = nodes.map { node in node.memoryBytes.map { $0 > 0 ? 1 / Double($0) : 0 } ?? 0 }
        sharedNetwork = nodes.map(\.sharedNetwork)
        var schedulable = NodeMask(count: count, allSet: false)
        for (i, s) in state.enumerated() where s == .schedulable { schedulable[i] = true }
        schedulableMask = schedulable

        cpuAllocated = Array(repeating: 0, count: count)
        memoryAllocated = Array(repeating: 0, count: count)
        portsInUse = Array(repeating: [], count: count)
    }

    // MARK: - Placing

    /// Chooses a node for `request` and records the placement, or says why no node can take it.
    public mutating func place(_ request: PlacementRequest) -> Result<String, Unschedulable> {
        let mask = eligibleNodes(Constraints(nodeSelector: request.nodeSelector, tolerations: request.tolerations))
        var spread = takeSpread(request.spreadKey)
        defer { spreads[request.spreadKey] = spread }
        guard let chosen = bestNode(request, eligible: mask, spread: spread) else {
            return .failure(diagnose(request))
        }
        allocate(request, on: chosen, spread: &spread)
        return .success(nodeNames[chosen])
    }

    /// Records a replica already bound to `node`: its allocation, host ports and, unless
    /// `countingTowardSpread` is false, its place in its deployment's spread. A node the scheduler does
    /// not know is ignored.
    public mutating func record(_ request: PlacementRequest, on node: String, countingTowardSpread: Bool = true) {
        guard let index = indexByName[node] else { return }
        var spread = takeSpread(request.spreadKey)
        allocate(request, on: index, spread: &spread)
        if !countingTowardSpread {
            spread.perNode[index] -= 1
            spread.perZone[Int(zoneOf[index])] -= 1
        }
        spreads[request.spreadKey] = spread
    }

    /// CPU millicores and memory bytes requested by the replicas placed or recorded on `node`.
    public func allocated(on node: String) -> (cpuMillicores: Int64, memoryBytes: Int64)? {
        indexByName[node].map { (cpuAllocated[$0], memoryAllocated[$0]) }
    }

    /// Replicas with `spreadKey` placed or recorded on `node`.
    public func replicas(of spreadKey: String, on node: String) -> Int {
        guard let index = indexByName[node], let spread = spreads[spreadKey] else { return 0 }
        return Int(spread.perNode[index])
    }

    // MARK: - Internals

    /// Removes the spread from the dictionary so that updating it does not copy its arrays.
    private mutating func takeSpread(_ key: String) -> Spread {
        spreads.removeValue(forKey: key)
            ?? Spread(perNode: Array(repeating: 0, count: nodeNames.count), perZone: Array(repeating: 0, count: zoneCount))
    }

    private mutating func allocate(_ request: PlacementRequest, on index: Int, spread: inout Spread) {
        cpuAllocated[index] += request.cpuMillicores
        memoryAllocated[index] += request.memoryBytes
        if sharedNetwork[index] {
            for port in request.hostPorts { portsInUse[index].insert(port.packed) }
        }
        spread.perNode[index] += 1
        spread.perZone[Int(zoneOf[index])] += 1
    }

    private mutating func eligibleNodes(_ constraints: Constraints) -> NodeMask {
        if constraints.nodeSelector.isEmpty && constraints.tolerations.isEmpty && taintSets.count == 1 {
            return schedulableMask
        }
        if let cached = eligibility[constraints] { return cached }
        var mask = schedulableMask
        mask.formIntersection(selectorMask(constraints.nodeSelector))
        mask.subtract(untoleratedMask(constraints.tolerations))
        if eligibility.count >= 256 { eligibility.removeAll(keepingCapacity: true) }
        eligibility[constraints] = mask
        return mask
    }

    private func selectorMask(_ selector: [String: String]) -> NodeMask {
        var mask = NodeMask(count: nodeNames.count, allSet: true)
        for (key, value) in selector {
            guard let nodes = labelMasks[key]?[value] else { return NodeMask(count: nodeNames.count, allSet: false) }
            mask.formIntersection(nodes)
        }
        return mask
    }

    private func untoleratedMask(_ tolerations: [Toleration]) -> NodeMask {
        var mask = NodeMask(count: nodeNames.count, allSet: false)
        for (index, taints) in taintSets.enumerated() where index > 0 && !tolerations.tolerateAll(taints) {
            mask.formUnion(taintSetMasks[index])
        }
        return mask
    }

    /// The hot loop: visits the eligible nodes, skips those that cannot beat the best so far on spread,
    /// then checks fit and compares scores. Ties keep the earlier node, i.e. the smaller name.
    private func bestNode(_ request: PlacementRequest, eligible: NodeMask, spread: Spread) -> Int? {
        let cpuRequest = request.cpuMillicores
        let memoryRequest = request.memoryBytes
        let ports = request.hostPorts.map(\.packed)
        let sign: Double = policy == .leastAllocated ? 1 : -1
        var best = -1
        var bestZone = Int32.max
        var bestNode = Int32.max
        var bestScore = Double.infinity
        eligible.words.withUnsafeBufferPointer { words in
        zoneOf.withUnsafeBufferPointer { zoneOf in
        spread.perZone.withUnsafeBufferPointer { perZone in
        spread.perNode.withUnsafeBufferPointer { perNode in
        cpuAllocated.withUnsafeBufferPointer { cpuAllocated in
        memoryAllocated.withUnsafeBufferPointer { memoryAllocated in
        cpuCapacity.withUnsafeBufferPointer { cpuCapacity in
        memoryCapacity.withUnsafeBufferPointer { memoryCapacity in
        cpuInverse.withUnsafeBufferPointer { cpuInverse in
        memoryInverse.withUnsafeBufferPointer { memoryInverse in
            for w in 0..<words.count {
                var bits = words[w]
                while bits != 0 {
                    let i = w << 6 | bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let node = perNode[i]
                    if node > bestNode { continue }
                    let zone = perZone[Int(zoneOf[i])]
                    if node == bestNode && zone > bestZone { continue }
                    let cpu = cpuAllocated[i] + cpuRequest
                    let memory = memoryAllocated[i] + memoryRequest
                    if cpu > cpuCapacity[i] || memory > memoryCapacity[i] { continue }
                    if !ports.isEmpty && sharedNetwork[i] && ports.contains(where: portsInUse[i].contains) { continue }
                    let score = sign * (Double(cpu) * cpuInverse[i] + Double(memory) * memoryInverse[i])
                    if node < bestNode || zone < bestZone || score < bestScore {
                        best = i
                        bestZone = zone
                        bestNode = node
                        bestScore = score
                    }
                }
            }
        }}}}}}}}}}
        return best >= 0 ? best : nil
    }

    /// Why every node turned `request` down; each node counts under the first filter it fails.
    private func diagnose(_ request: PlacementRequest) -> Unschedulable {
        let selector = selectorMask(request.nodeSelector)
        let untolerated = untoleratedMask(request.tolerations)
        let ports = request.hostPorts.map(\.packed)
        var counts: [SchedulingFilter: Int] = [:]
        for i in nodeNames.indices {
            let filter: SchedulingFilter
            if state[i] == .notReady {
                filter = .nodeReady
            } else if state[i] == .cordoned {
                filter = .nodeUnschedulable
            } else if !selector[i] {
                filter = .nodeSelector
            } else if untolerated[i] {
                filter = .taints
            } else if cpuAllocated[i] + request.cpuMillicores > cpuCapacity[i] {
                filter = .cpu
            } else if memoryAllocated[i] + request.memoryBytes > memoryCapacity[i] {
                filter = .memory
            } else if sharedNetwork[i] && ports.contains(where: portsInUse[i].contains) {
                filter = .hostPorts
            } else {
                continue
            }
            counts[filter, default: 0] += 1
        }
        return Unschedulable(nodes: nodeNames.count, counts: counts)
    }
}
