/// A load balancer for one service port: picks a backend per new connection.
///
/// A value type; the proxy keeps one per service (behind a lock) and calls `pick` per new connection.
/// State kept between picks (round-robin positions, the hash ring) is rebuilt only when the list of
/// `(id, weight)` pairs changes, so the hot path does not allocate.
public struct LoadBalancer: Sendable {
    /// The algorithm this balancer runs.
    public let policy: LoadBalancerPolicy
    private var roundRobin = SmoothWeightedRoundRobin()
    private var ring = HashRing()

    /// Latency assumed for p2cEwma when no eligible backend has a known latency (1 ms).
    public static let defaultLatency: Double = 0.001

    public init(policy: LoadBalancerPolicy = .default) {
        self.policy = policy
    }

    /// Returns the id of the chosen backend among `backends`, skipping ids in `excluding` (already tried
    /// for this connection, or ejected) and backends of weight 0; nil if none is eligible.
    /// `clientKey` is a hash of the client address (used by ringHash for affinity).
    public mutating func pick(
        from backends: [BackendSnapshot],
        clientKey: UInt64,
        excluding: Set<String>,
        using random: inout some RandomNumberGenerator
    ) -> String? {
        switch policy {
        case .roundRobin:
            return roundRobin.pick(from: backends, excluding: excluding)
        case .random:
            return Self.pickRandom(from: backends, excluding: excluding, using: &random)
        case .leastConnections:
            return Self.pickLeastConnections(from: backends, excluding: excluding, using: &random)
        case .p2cEwma:
            return Self.pickP2C(from: backends, excluding: excluding, using: &random)
        case .ringHash:
            ring.update(backends)
            return ring.pick(clientKey: clientKey, excluding: excluding)
        }
    }

    /// `pick` with the system random number generator.
    public mutating func pick(from backends: [BackendSnapshot], clientKey: UInt64 = 0, excluding: Set<String> = []) -> String? {
        var generator = SystemRandomNumberGenerator()
        return pick(from: backends, clientKey: clientKey, excluding: excluding, using: &generator)
    }

    // MARK: - Stateless pickers

    @inline(__always)
    static func isEligible(_ backend: BackendSnapshot, _ excluding: Set<String>) -> Bool {
        backend.weight > 0 && (excluding.isEmpty || !excluding.contains(backend.id))
    }

    /// Total weight and count of the eligible backends, and the index of the last one.
    private static func eligibleTotals(_ backends: [BackendSnapshot], _ excluding: Set<String>) -> (weight: UInt64, count: Int, last: Int) {
        var weight: UInt64 = 0
        var count = 0
        var last = -1
        for index in backends.indices where isEligible(backends[index], excluding) {
            weight &+= UInt64(backends[index].weight)
            count += 1
            last = index
        }
        return (weight, count, last)
    }

    /// The eligible backend (other than `skipping`) whose cumulative weight range holds `target`.
    private static func weightedIndex(_ backends: [BackendSnapshot], _ excluding: Set<String>, target: UInt64, skipping: Int) -> Int {
        var remaining = target
        var last = -1
        for index in backends.indices where index != skipping && isEligible(backends[index], excluding) {
            let weight = UInt64(backends[index].weight)
            if remaining < weight { return index }
            remaining -= weight
            last = index
        }
        return last
    }

    static func pickRandom(from backends: [BackendSnapshot], excluding: Set<String>, using random: inout some RandomNumberGenerator) -> String? {
        let totals = eligibleTotals(backends, excluding)
        guard totals.count > 0 else { return nil }
        if totals.count == 1 { return backends[totals.last].id }
        let index = weightedIndex(backends, excluding, target: random.next(upperBound: totals.weight), skipping: -1)
        return backends[index].id
    }

    /// Lowest `activeConnections / weight`; equal scores are broken by a weighted random choice
    /// (reservoir sampling in the same pass), so an idle pool still splits by weight.
    static func pickLeastConnections(from backends: [BackendSnapshot], excluding: Set<String>, using random: inout some RandomNumberGenerator) -> String? {
        var best = -1
        var bestScore = 0.0
        var tiedWeight: UInt64 = 0
        for index in backends.indices where isEligible(backends[index], excluding) {
            let backend = backends[index]
            let score = Double(max(backend.activeConnections, 0)) / Double(backend.weight)
            if best < 0 || score < bestScore {
                best = index
                bestScore = score
                tiedWeight = UInt64(backend.weight)
            } else if score == bestScore {
                tiedWeight &+= UInt64(backend.weight)
                if random.next(upperBound: tiedWeight) < UInt64(backend.weight) { best = index }
            }
        }
        return best < 0 ? nil : backends[best].id
    }

    /// Two distinct candidates drawn by weight; the lower `latency × (active + 1) / weight` wins.
    /// Unknown latency counts as the mean of the eligible backends' known latencies, or
    /// `defaultLatency` when none is known. An exact tie goes to the first candidate drawn.
    static func pickP2C(from backends: [BackendSnapshot], excluding: Set<String>, using random: inout some RandomNumberGenerator) -> String? {
        let totals = eligibleTotals(backends, excluding)
        guard totals.count > 0 else { return nil }
        if totals.count == 1 { return backends[totals.last].id }
        let first = weightedIndex(backends, excluding, target: random.next(upperBound: totals.weight), skipping: -1)
        let rest = totals.weight - UInt64(backends[first].weight)
        let second = weightedIndex(backends, excluding, target: random.next(upperBound: rest), skipping: first)

        var fallback: Double?
        func latency(_ index: Int) -> Double {
            if let value = backends[index].latency, value.isFinite, value >= 0 { return value }
            if let fallback { return fallback }
            let value = meanKnownLatency(backends, excluding) ?? defaultLatency
            fallback = value
            return value
        }
        func cost(_ index: Int) -> Double {
            let backend = backends[index]
            return latency(index) * Double(max(backend.activeConnections, 0) + 1) / Double(backend.weight)
        }
        return cost(second) < cost(first) ? backends[second].id : backends[first].id
    }

    private static func meanKnownLatency(_ backends: [BackendSnapshot], _ excluding: Set<String>) -> Double? {
        var sum = 0.0
        var count = 0
        for backend in backends where isEligible(backend, excluding) {
            if let value = backend.latency, value.isFinite, value >= 0 {
                sum += value
                count += 1
            }
        }
        return count == 0 ? nil : sum / Double(count)
    }
}

/// nginx's smooth weighted round-robin: each pick adds every eligible backend's weight to its current
/// value, takes the largest (first on ties) and subtracts the eligible total from it.
struct SmoothWeightedRoundRobin: Sendable {
    private var ids: [String] = []
    private var weights: [Int] = []
    private var current: [Int] = []

    mutating func pick(from backends: [BackendSnapshot], excluding: Set<String>) -> String? {
        synchronize(with: backends)
        var total = 0
        var best = -1
        for index in backends.indices where LoadBalancer.isEligible(backends[index], excluding) {
            current[index] += weights[index]
            total += weights[index]
            if best < 0 || current[index] > current[best] { best = index }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return ids[best]
    }

    /// Rebuilds the state when ids or weights changed, keeping the current value of backends that stay.
    private mutating func synchronize(with backends: [BackendSnapshot]) {
        if backends.have(ids: ids, weights: weights) { return }
        var previous: [String: Int] = [:]
        for index in ids.indices { previous[ids[index]] = current[index] }
        ids = backends.map(\.id)
        weights = backends.map(\.weight)
        current = ids.map { previous[$0] ?? 0 }
    }
}

extension [BackendSnapshot] {
    /// Whether these backends are exactly `ids` with `weights`, in that order: what a picker's state
    /// was built from, so it need not be rebuilt.
    func have(ids: [String], weights: [Int]) -> Bool {
        guard count == ids.count else { return false }
        for index in indices where self[index].weight != weights[index] || self[index].id != ids[index] {
            return false
        }
        return true
    }
}
