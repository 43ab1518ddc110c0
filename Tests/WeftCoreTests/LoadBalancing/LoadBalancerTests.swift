import Testing
@testable import WeftCore

/// Distribution tests use the seeded `SplitMix64` from WeftCore, so they are reproducible.
private typealias PickRandom = SplitMix64

private func backends(_ weights: [Int]) -> [BackendSnapshot] {
    weights.enumerated().map { BackendSnapshot(id: "10.0.0.\($0.offset + 1):8080", weight: $0.element) }
}

/// Picks `count` times with static snapshots and returns the picks per id.
private func counts(_ policy: LoadBalancerPolicy, _ pool: [BackendSnapshot], picks count: Int = 40_000, excluding: Set<String> = [], seed: UInt64 = 42) -> [String: Int] {
    var balancer = LoadBalancer(policy: policy)
    var random = PickRandom(seed: seed)
    var result: [String: Int] = [:]
    for n in 0..<count {
        let key = policy == .ringHash ? UInt64(n) : 0
        if let id = balancer.pick(from: pool, clientKey: key, excluding: excluding, using: &random) {
            result[id, default: 0] += 1
        }
    }
    return result
}

/// Picks `count` times while each pick opens a connection that stays open for the next
/// `concurrency` picks, so load-aware policies see the load they create.
private func countsUnderLoad(_ policy: LoadBalancerPolicy, _ initial: [BackendSnapshot], picks count: Int = 40_000, concurrency: Int = 100, seed: UInt64 = 7) -> [String: Int] {
    var pool = initial
    var balancer = LoadBalancer(policy: policy)
    var random = PickRandom(seed: seed)
    var open: [Int] = []
    var result: [String: Int] = [:]
    for _ in 0..<count {
        guard let id = balancer.pick(from: pool, clientKey: 0, excluding: [], using: &random),
              let index = pool.firstIndex(where: { $0.id == id }) else { continue }
        result[id, default: 0] += 1
        pool[index].activeConnections += 1
        open.append(index)
        if open.count > concurrency { pool[open.removeFirst()].activeConnections -= 1 }
    }
    return result
}

private func expectShares(_ counts: [String: Int], _ pool: [BackendSnapshot], within tolerance: Double, sourceLocation: SourceLocation = #_sourceLocation) {
    let total = Double(counts.values.reduce(0, +))
    let weight = Double(pool.map(\.weight).reduce(0, +))
    for backend in pool {
        let share = Double(counts[backend.id, default: 0]) / total
        let expected = Double(backend.weight) / weight
        #expect(abs(share - expected) <= tolerance, "\(backend.id): share \(share), expected \(expected)", sourceLocation: sourceLocation)
    }
}

@Suite("LoadBalancer")
struct LoadBalancerTests {
    let weighted = backends([100, 100, 200])

    @Test func defaultPolicyIsP2CEwma() {
        #expect(LoadBalancer().policy == .p2cEwma)
        #expect(ServiceSpec(ports: [ServicePort(port: 80)]).loadBalancerPolicy == .p2cEwma)
        #expect(LoadBalancer(policy: .ringHash).policy == .ringHash)
    }

    @Test func policyDecodesByNameAndRefusesUnknownNames() throws {
        let spec = try StrictDecoder.decode(ServiceSpec.self, from: json(#"{"ports": [{"port": 80}], "loadBalancer": "ringHash"}"#))
        #expect(spec.loadBalancerPolicy == .ringHash)
        #expect(throws: FieldError.self) {
            try StrictDecoder.decode(ServiceSpec.self, from: json(#"{"ports": [{"port": 80}], "loadBalancer": "fastest"}"#))
        }
    }

    @Test func roundRobinIsExactOverEveryCycle() {
        let result = counts(.roundRobin, weighted)
        #expect(result == [weighted[0].id: 10_000, weighted[1].id: 10_000, weighted[2].id: 20_000])
    }

    @Test func roundRobinIsSmooth() {
        // nginx's example: weights 5, 1, 1 give a a b a c a a, not a a a a a b c.
        let pool = [BackendSnapshot(id: "a", weight: 5), BackendSnapshot(id: "b", weight: 1), BackendSnapshot(id: "c", weight: 1)]
        var balancer = LoadBalancer(policy: .roundRobin)
        var random = PickRandom(seed: 1)
        let sequence = (0..<14).map { _ in balancer.pick(from: pool, clientKey: 0, excluding: [], using: &random)! }
        #expect(sequence.joined() == "aabacaaaabacaa")
    }

    @Test func roundRobinKeepsItsPlaceWhenTheListIsRebuilt() {
        var balancer = LoadBalancer(policy: .roundRobin)
        var random = PickRandom(seed: 1)
        let pool = backends([100, 100, 100])
        var seen: [String] = []
        for _ in 0..<3 { seen.append(balancer.pick(from: pool, clientKey: 0, excluding: [], using: &random)!) }
        #expect(Set(seen).count == 3)
        // A new backend joins: the rotation goes on rather than restarting at the first backend.
        let grown = pool + [BackendSnapshot(id: "new", weight: 100)]
        var next: [String] = []
        for _ in 0..<4 { next.append(balancer.pick(from: grown, clientKey: 0, excluding: [], using: &random)!) }
        #expect(Set(next).count == 4)
    }

    @Test func randomIsProportionalToWeight() {
        expectShares(counts(.random, weighted), weighted, within: 0.02)
    }

    @Test func leastConnectionsIsProportionalToWeightWhenIdleAndUnderLoad() {
        expectShares(counts(.leastConnections, weighted), weighted, within: 0.02)
        expectShares(countsUnderLoad(.leastConnections, weighted), weighted, within: 0.02)
    }

    @Test func p2cIsProportionalToWeightUnderLoad() {
        expectShares(countsUnderLoad(.p2cEwma, weighted), weighted, within: 0.02)
    }

    @Test func ringHashIsRoughlyProportionalToWeight() {
        expectShares(counts(.ringHash, weighted), weighted, within: 0.05)
    }

    @Test(arguments: LoadBalancerPolicy.allCases)
    func weightZeroIsNeverPicked(policy: LoadBalancerPolicy) {
        let pool = backends([100, 0, 200])
        let result = counts(policy, pool, picks: 5_000)
        #expect(result[pool[1].id] == nil)
        #expect(result.values.reduce(0, +) == 5_000)
    }

    @Test(arguments: LoadBalancerPolicy.allCases)
    func excludedBackendsAreSkipped(policy: LoadBalancerPolicy) {
        let pool = backends([100, 100, 200])
        let result = counts(policy, pool, picks: 5_000, excluding: [pool[2].id])
        #expect(result[pool[2].id] == nil)
        #expect(result.values.reduce(0, +) == 5_000)
        #expect(result.count == 2)
    }

    @Test(arguments: LoadBalancerPolicy.allCases)
    func nothingEligibleGivesNil(policy: LoadBalancerPolicy) {
        var balancer = LoadBalancer(policy: policy)
        var random = PickRandom(seed: 3)
        let pool = backends([100, 0, 50])
        let allExcluded = balancer.pick(from: pool, clientKey: 9, excluding: [pool[0].id, pool[2].id], using: &random)
        let empty = balancer.pick(from: [], clientKey: 9, excluding: [], using: &random)
        let allZero = balancer.pick(from: backends([0, 0]), clientKey: 9, excluding: [], using: &random)
        #expect(allExcluded == nil && empty == nil && allZero == nil)
        // One eligible backend is always the answer.
        let only = balancer.pick(from: pool, clientKey: 9, excluding: [pool[0].id], using: &random)
        #expect(only == pool[2].id)
    }

    @Test func leastConnectionsPrefersTheLeastLoadedRelativeToWeight() {
        var balancer = LoadBalancer(policy: .leastConnections)
        var random = PickRandom(seed: 5)
        // 10/100 = 0.1, 3/100 = 0.03, 4/200 = 0.02: the heavy backend wins though it has more connections.
        let pool = [
            BackendSnapshot(id: "a", weight: 100, activeConnections: 10),
            BackendSnapshot(id: "b", weight: 100, activeConnections: 3),
            BackendSnapshot(id: "c", weight: 200, activeConnections: 4),
        ]
        for _ in 0..<100 {
            let id = balancer.pick(from: pool, clientKey: 0, excluding: [], using: &random)
            #expect(id == "c")
        }
        let withoutC = balancer.pick(from: pool, clientKey: 0, excluding: ["c"], using: &random)
        #expect(withoutC == "b")
    }

    @Test func p2cPrefersLowLatencyStronglyButNotExclusively() {
        let pool = [
            BackendSnapshot(id: "fast", latency: 0.001),
            BackendSnapshot(id: "slow1", latency: 0.050),
            BackendSnapshot(id: "slow2", latency: 0.050),
        ]
        let result = counts(.p2cEwma, pool, picks: 30_000)
        let fast = Double(result["fast", default: 0]) / 30_000
        // The fast backend wins every pair it is in: 2/3 of the pairs.
        #expect((0.6...0.75).contains(fast))
        #expect(result["slow1", default: 0] > 3_000)
        #expect(result["slow2", default: 0] > 3_000)
    }

    @Test func p2cPenalisesManyActiveConnections() {
        let pool = [
            BackendSnapshot(id: "busy", activeConnections: 50, latency: 0.010),
            BackendSnapshot(id: "idle1", activeConnections: 1, latency: 0.010),
            BackendSnapshot(id: "idle2", activeConnections: 1, latency: 0.010),
        ]
        let result = counts(.p2cEwma, pool, picks: 30_000)
        #expect(result["busy", default: 0] == 0) // it loses every pair it is in
        // Even a much faster backend loses once it is loaded enough: 1 ms × 100 > 10 ms × 2.
        let skewed = [
            BackendSnapshot(id: "fast-but-loaded", activeConnections: 99, latency: 0.001),
            BackendSnapshot(id: "slow-idle", activeConnections: 1, latency: 0.010),
        ]
        #expect(counts(.p2cEwma, skewed, picks: 1_000)["slow-idle"] == 1_000)
    }

    @Test func p2cTreatsUnknownLatencyAsThePoolMean() {
        // Known: 2 ms and 10 ms, mean 6 ms; the new backend beats the slow one and loses to the fast one.
        let pool = [
            BackendSnapshot(id: "fast", latency: 0.002),
            BackendSnapshot(id: "slow", latency: 0.010),
            BackendSnapshot(id: "new", latency: nil),
        ]
        let result = counts(.p2cEwma, pool, picks: 30_000)
        #expect(result["fast", default: 0] > result["new", default: 0])
        #expect(result["new", default: 0] > result["slow", default: 0])
        #expect(result["slow", default: 0] == 0)
        // With no known latency at all, cost is load / weight alone.
        let unknown = [BackendSnapshot(id: "a", activeConnections: 5), BackendSnapshot(id: "b", activeConnections: 0)]
        #expect(counts(.p2cEwma, unknown, picks: 100)["b"] == 100)
    }

    @Test func ringHashGivesTheSameBackendForTheSameKey() {
        var balancer = LoadBalancer(policy: .ringHash)
        var random = PickRandom(seed: 11)
        let pool = backends([100, 100, 100, 100, 100])
        for key in stride(from: UInt64(0), to: 10_000, by: 37) {
            let first = balancer.pick(from: pool, clientKey: key, excluding: [], using: &random)
            for _ in 0..<3 {
                let again = balancer.pick(from: pool, clientKey: key, excluding: [], using: &random)
                #expect(again == first)
            }
            // A fresh balancer (another process, another node) agrees: placement is not seeded per process.
            var other = LoadBalancer(policy: .ringHash)
            let elsewhere = other.pick(from: pool.reversed(), clientKey: key, excluding: [], using: &random)
            #expect(elsewhere == first)
        }
    }

    @Test func ringHashMovesOnlyTheRemovedBackendsKeysAndRestoresThem() {
        let pool = backends([100, 100, 100, 100, 100])
        let keys = (0..<20_000).map { UInt64($0) &* 0x9E37_79B9 }
        var balancer = LoadBalancer(policy: .ringHash)
        var random = PickRandom(seed: 13)
        let before = keys.map { balancer.pick(from: pool, clientKey: $0, excluding: [], using: &random)! }

        let removed = pool[2].id
        let smaller = pool.filter { $0.id != removed }
        let after = keys.map { balancer.pick(from: smaller, clientKey: $0, excluding: [], using: &random)! }
        var moved = 0
        for index in keys.indices where before[index] != after[index] {
            moved += 1
            #expect(before[index] == removed)
        }
        #expect(Double(moved) / Double(keys.count) <= 0.25 + 0.05)
        #expect(moved == before.filter { $0 == removed }.count)

        // Excluding the backend moves exactly the same keys to the same places as removing it.
        let excluded = keys.map { balancer.pick(from: pool, clientKey: $0, excluding: [removed], using: &random)! }
        #expect(excluded == after)

        let restored = keys.map { balancer.pick(from: pool, clientKey: $0, excluding: [], using: &random)! }
        #expect(restored == before)
    }

    @Test func ringHashWeightChangeMovesKeysOnlyToAndFromThatBackend() {
        let pool = backends([100, 100, 100, 100])
        var heavier = pool
        heavier[0].weight = 200
        let keys = (0..<10_000).map { UInt64($0) }
        var balancer = LoadBalancer(policy: .ringHash)
        var random = PickRandom(seed: 17)
        let before = keys.map { balancer.pick(from: pool, clientKey: $0, excluding: [], using: &random)! }
        let after = keys.map { balancer.pick(from: heavier, clientKey: $0, excluding: [], using: &random)! }
        for index in keys.indices where before[index] != after[index] {
            #expect(after[index] == pool[0].id)
        }
    }
}
