import Foundation
import WeftCore

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// Places `deployments × replicas` replicas on `nodes` nodes in one process, deployment after
/// deployment as the controller does, and reports placements per second of wall-clock time.
///
/// The cluster is generated from a seed: five zones (2% of nodes without one), 4–64 cores at 4 GiB per
/// core, half the nodes `disktype=ssd`, 5% GPU nodes tainted `gpu=true:NoSchedule`, 1% not ready and
/// 1% cordoned. Deployments request 100m–2 cores and 128Mi–4Gi; 10% select `disktype=ssd`, 3% tolerate
/// the GPU taint and select `gpu=true`, 2% hold a host port.
struct SchedulerBench {
    var nodes = 5000
    var deployments = 1000
    var replicas = 100
    var runs = 3
    var policies: [SchedulingPolicy] = [.leastAllocated, .mostAllocated]
    var seed: UInt64 = 1

    init(arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let v = rest.popFirst() else { throw UsageError(description: "\(flag) needs a value") }
            return v
        }
        func int(_ flag: String) throws -> Int {
            let text = try value(flag)
            guard let n = Int(text), n > 0 else { throw UsageError(description: "\(flag): \"\(text)\" is not a positive integer") }
            return n
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--nodes": nodes = try int(flag)
            case "--deployments": deployments = try int(flag)
            case "--replicas": replicas = try int(flag)
            case "--runs": runs = try int(flag)
            case "--seed": seed = UInt64(try int(flag))
            case "--policy":
                let text = try value(flag)
                if text == "both" {
                    policies = [.leastAllocated, .mostAllocated]
                } else if let policy = SchedulingPolicy(rawValue: text) {
                    policies = [policy]
                } else {
                    throw UsageError(description: "--policy: \"\(text)\" is not leastAllocated, mostAllocated or both")
                }
            default:
                throw UsageError(description: "unknown option \(flag)")
            }
        }
    }

    func run() throws {
        var random = SplitMix64(seed: seed)
        let cluster = makeNodes(&random)
        let requests = makeRequests(&random)
        let total = requests.count * replicas
        print("Scheduler: \(total) replicas (\(deployments) deployments × \(replicas)) on \(nodes) nodes, \(runs) run(s) per policy, seed \(seed)")
        print("")
        print("| policy | build ms | placed | unschedulable | seconds | placements/s | mean µs | p99 µs | max µs | max/node (1 deployment) | max zone skew (1 deployment) | cpu requested |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for policy in policies {
            var results: [RunResult] = []
            for _ in 0..<runs {
                results.append(measure(policy: policy, nodes: cluster, requests: requests))
            }
            // The median run by rate: the runs share the machine with whatever else runs.
            let median = results.sorted { $0.rate < $1.rate }[results.count / 2]
            print(median.row(policy: policy, allRates: results.map(\.rate)))
        }
    }

    struct RunResult {
        var buildSeconds: Double
        var seconds: Double
        var placed: Int
        var unschedulable: Int
        var latencies: [Double]
        var maxPerNode: Int
        var maxZoneSkew: Int
        var cpuShare: Double

        var rate: Double { Double(placed + unschedulable) / seconds }

        func row(policy: SchedulingPolicy, allRates: [Double]) -> String {
            let sorted = latencies.sorted()
            let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            let mean = latencies.reduce(0, +) / Double(latencies.count)
            let rates = allRates.sorted().map { String(format: "%.0f", $0) }.joined(separator: ", ")
            return "| \(policy.rawValue) | \(String(format: "%.0f", buildSeconds * 1000)) | \(placed) | \(unschedulable) | \(String(format: "%.2f", seconds)) "
                + "| **\(String(format: "%.0f", rate))** (runs: \(rates)) | \(String(format: "%.1f", mean * 1e6)) | \(String(format: "%.1f", p99 * 1e6)) "
                + "| \(String(format: "%.0f", (sorted.last ?? 0) * 1e6)) | \(maxPerNode) | \(maxZoneSkew) | \(String(format: "%.0f%%", cpuShare * 100)) |"
        }
    }

    func measure(policy: SchedulingPolicy, nodes cluster: [SchedulingNode], requests: [PlacementRequest]) -> RunResult {
        let clock = ContinuousClock()
        let buildStart = clock.now
        var scheduler = Scheduler(nodes: cluster, policy: policy)
        let build = clock.now - buildStart
        var latencies: [Double] = []
        latencies.reserveCapacity(requests.count * replicas)
        var placed = 0
        var unschedulable = 0
        var maxPerNode = 0
        var maxZoneSkew = 0
        let zoneOf = Dictionary(uniqueKeysWithValues: cluster.map { ($0.name, $0.zone) })
        let zoneCount = Set(cluster.map(\.zone).filter { !$0.isEmpty }).count
        var perNode: [String: Int] = [:]
        var perZone: [String: Int] = [:]
        var started = clock.now
        var elapsed = Duration.zero
        for request in requests {
            perNode.removeAll(keepingCapacity: true)
            perZone.removeAll(keepingCapacity: true)
            started = clock.now
            for _ in 0..<replicas {
                let before = clock.now
                let result = scheduler.place(request)
                latencies.append((clock.now - before).seconds)
                switch result {
                case .success(let node):
                    placed += 1
                    perNode[node, default: 0] += 1
                    if let zone = zoneOf[node], !zone.isEmpty { perZone[zone, default: 0] += 1 }
                case .failure:
                    unschedulable += 1
                }
            }
            elapsed += clock.now - started
            maxPerNode = max(maxPerNode, perNode.values.max() ?? 0)
            // Skew between the five labelled zones (a zone with none of the replicas counts as 0).
            let counts = perZone.values
            maxZoneSkew = max(maxZoneSkew, (counts.max() ?? 0) - (perZone.count == zoneCount ? counts.min()! : 0))
        }
        var requested: Int64 = 0
        var capacity: Int64 = 0
        for node in cluster where node.ready && !node.unschedulable {
            requested += scheduler.allocated(on: node.name)?.cpuMillicores ?? 0
            capacity += node.cpuMillicores ?? 0
        }
        return RunResult(buildSeconds: build.seconds, seconds: elapsed.seconds, placed: placed, unschedulable: unschedulable,
                         latencies: latencies, maxPerNode: maxPerNode, maxZoneSkew: maxZoneSkew,
                         cpuShare: Double(requested) / Double(max(1, capacity)))
    }

    func makeNodes(_ random: inout SplitMix64) -> [SchedulingNode] {
        let zones = ["zone-a", "zone-b", "zone-c", "zone-d", "zone-e"]
        let cores: [Int64] = [4, 8, 16, 32, 64]
        return (0..<nodes).map { i in
            let roll = Int.random(in: 0..<100, using: &random)
            var labels = ["disktype": Bool.random(using: &random) ? "ssd" : "hdd", "kubernetes.io/hostname": "node-\(i)"]
            if roll >= 2 { labels[SchedulingNode.zoneLabel] = zones[i % zones.count] }
            var taints: [Taint] = []
            if Int.random(in: 0..<100, using: &random) < 5 {
                labels["gpu"] = "true"
                taints = [Taint(key: "gpu", value: "true")]
            }
            let cpu = cores.randomElement(using: &random)!
            let health = Int.random(in: 0..<100, using: &random)
            return SchedulingNode(name: String(format: "node-%05d", i), ready: health != 0, unschedulable: health == 1,
                                  labels: labels, taints: taints, cpuMillicores: cpu * 1000, memoryBytes: cpu * 4 << 30)
        }
    }

    func makeRequests(_ random: inout SplitMix64) -> [PlacementRequest] {
        let cpus: [Int64] = [100, 250, 500, 1000, 2000]
        let memories: [Int64] = [128 << 20, 256 << 20, 512 << 20, 1 << 30, 4 << 30]
        return (0..<deployments).map { d in
            let kind = Int.random(in: 0..<100, using: &random)
            var request = PlacementRequest(spreadKey: "bench/deployment-\(d)", cpuMillicores: cpus.randomElement(using: &random)!,
                                           memoryBytes: memories.randomElement(using: &random)!)
            switch kind {
            case 0..<10: request.nodeSelector = ["disktype": "ssd"]
            case 10..<13:
                request.nodeSelector = ["gpu": "true"]
                request.tolerations = [Toleration(key: "gpu", operator: "Exists")]
            case 13..<15: request.hostPorts = [HostPort(port: 9000 + d % 50)]
            default: break
            }
            return request
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
