import Testing
@testable import WeftCore

private let gi: Int64 = 1 << 30

private func node(_ name: String, cpu: Int64? = 4000, memory: Int64? = 8 * gi, zone: String? = nil, labels: [String: String] = [:],
                  taints: [Taint] = [], ready: Bool = true, unschedulable: Bool = false, sharedNetwork: Bool = true) -> SchedulingNode {
    var labels = labels
    if let zone { labels[SchedulingNode.zoneLabel] = zone }
    return SchedulingNode(name: name, ready: ready, unschedulable: unschedulable, labels: labels, taints: taints,
                          cpuMillicores: cpu, memoryBytes: memory, sharedNetwork: sharedNetwork)
}

private func request(_ key: String = "default/web", cpu: Int64 = 0, memory: Int64 = 0, selector: [String: String] = [:],
                     tolerations: [Toleration] = [], ports: [HostPort] = []) -> PlacementRequest {
    PlacementRequest(spreadKey: key, cpuMillicores: cpu, memoryBytes: memory, nodeSelector: selector, tolerations: tolerations, hostPorts: ports)
}

extension Result {
    var value: Success? { try? get() }
    var error: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

@Suite("Scheduler: filters")
struct SchedulerFilterTests {
    @Test func notReadyAndCordonedNodesAreSkipped() {
        var scheduler = Scheduler(nodes: [node("a", ready: false), node("b", unschedulable: true), node("c")])
        #expect(scheduler.place(request()).value == "c")
        var none = Scheduler(nodes: [node("a", ready: false), node("b", unschedulable: true)])
        let reason = none.place(request()).error
        #expect(reason?.count(.nodeReady) == 1)
        #expect(reason?.count(.nodeUnschedulable) == 1)
        #expect(reason?.description == "0/2 nodes available: 1 node(s) were not ready, 1 node(s) were unschedulable")
    }

    @Test func cpuAndMemoryMustFit() {
        var scheduler = Scheduler(nodes: [node("small", cpu: 500, memory: gi), node("big", cpu: 8000, memory: 16 * gi)])
        #expect(scheduler.place(request(cpu: 1000)).value == "big")
        #expect(scheduler.place(request(memory: 2 * gi)).value == "big")
        let reason = scheduler.place(request(cpu: 64_000)).error
        #expect(reason?.description == "0/2 nodes available: 2 insufficient cpu")
        #expect(scheduler.place(request(memory: 64 * gi)).error?.description == "0/2 nodes available: 2 insufficient memory")
    }

    @Test func placementsUseUpCapacity() {
        var scheduler = Scheduler(nodes: [node("a", cpu: 1000)])
        for _ in 0..<4 { #expect(scheduler.place(request(cpu: 250)).value == "a") }
        #expect(scheduler.place(request(cpu: 250)).error?.count(.cpu) == 1)
        #expect(scheduler.place(request(cpu: 0)).value == "a")
        #expect(scheduler.allocated(on: "a")?.cpuMillicores == 1000)
    }

    @Test func nodeWithoutCapacityIsNotLimited() {
        var scheduler = Scheduler(nodes: [node("unknown", cpu: nil, memory: nil)])
        #expect(scheduler.place(request(cpu: 1_000_000, memory: 1 << 50)).value == "unknown")
    }

    @Test func nodeSelectorNeedsEveryLabel() {
        var scheduler = Scheduler(nodes: [node("a", labels: ["disk": "ssd"]), node("b", labels: ["disk": "ssd", "gpu": "yes"]), node("c")])
        #expect(scheduler.place(request(selector: ["disk": "ssd", "gpu": "yes"])).value == "b")
        let reason = scheduler.place(request(selector: ["disk": "nvme"])).error
        #expect(reason?.description == "0/3 nodes available: 3 node(s) didn't match nodeSelector")
    }

    @Test func taintsNeedTolerations() {
        let gpu = Taint(key: "gpu", value: "true")
        var scheduler = Scheduler(nodes: [node("tainted", taints: [gpu])])
        #expect(scheduler.place(request()).error?.description == "0/1 nodes available: 1 node(s) had untolerated taint(s)")
        #expect(scheduler.place(request(tolerations: [Toleration(key: "gpu", value: "true")])).value == "tainted")
        #expect(scheduler.place(request(tolerations: [Toleration(key: "gpu", operator: "Exists")])).value == "tainted")
        #expect(scheduler.place(request(tolerations: [Toleration(operator: "Exists")])).value == "tainted")
        #expect(scheduler.place(request(tolerations: [Toleration(key: "gpu", value: "false")])).error != nil)
        #expect(scheduler.place(request(tolerations: [Toleration(key: "gpu", value: "true", effect: "NoExecute")])).error != nil)
    }

    @Test func everyTaintMustBeTolerated() {
        var scheduler = Scheduler(nodes: [node("both", taints: [Taint(key: "gpu"), Taint(key: "spot")]), node("plain", cpu: 100)])
        #expect(scheduler.place(request(cpu: 500, tolerations: [Toleration(key: "gpu", operator: "Exists")])).error?.description
                == "0/2 nodes available: 1 node(s) had untolerated taint(s), 1 insufficient cpu")
        #expect(scheduler.place(request(cpu: 500, tolerations: [Toleration(key: "gpu", operator: "Exists"), Toleration(key: "spot", operator: "Exists")])).value == "both")
    }

    @Test func hostPortsConflictOnSharedNetworkNodesOnly() {
        let http = HostPort(port: 8080)
        var scheduler = Scheduler(nodes: [node("shared")])
        #expect(scheduler.place(request("default/a", ports: [http])).value == "shared")
        #expect(scheduler.place(request("default/b", ports: [HostPort(port: 8080, protocol: "UDP")])).value == "shared")
        #expect(scheduler.place(request("default/c", ports: [http])).error?.description
                == "0/1 nodes available: 1 node(s) didn't have free ports for the requested host ports")

        var isolated = Scheduler(nodes: [node("netns", sharedNetwork: false)])
        #expect(isolated.place(request(ports: [http])).value == "netns")
        #expect(isolated.place(request(ports: [http])).value == "netns")
    }

    @Test func noNodes() {
        var scheduler = Scheduler(nodes: [])
        #expect(scheduler.place(request()).error?.description == "0/0 nodes available: no nodes are registered")
    }

    @Test func reasonsCountEachNodeOnceUnderItsFirstFailingFilterMostFirst() {
        var scheduler = Scheduler(nodes: [
            node("a", cpu: 100), node("b", cpu: 100), node("c", cpu: 100),
            node("d", labels: ["disk": "hdd"]), node("e", labels: ["disk": "hdd"]),
            node("f", cpu: 100, ready: false),
        ])
        // Node f fails both readiness and cpu: it counts once, as not ready.
        #expect(scheduler.place(request(cpu: 1000, selector: ["disk": "hdd"])).value == "d")
        let failure = scheduler.place(request(cpu: 1000, selector: ["disk": "ssd"])).error
        #expect(failure?.description == "0/6 nodes available: 5 node(s) didn't match nodeSelector, 1 node(s) were not ready")

        let x = ["x": "y"]
        var fit = Scheduler(nodes: [node("a", cpu: 100, labels: x), node("b", cpu: 100, labels: x), node("c", cpu: 100, labels: x), node("d"), node("e")])
        #expect(fit.place(request(cpu: 1000, selector: x)).error?.description == "0/5 nodes available: 3 insufficient cpu, 2 node(s) didn't match nodeSelector")
    }
}

@Suite("Scheduler: scores")
struct SchedulerScoreTests {
    @Test func replicasOfOneDeploymentSpreadEvenlyAcrossNodes() {
        let nodes = (0..<7).map { node("n\($0)") }
        var scheduler = Scheduler(nodes: nodes)
        var counts: [String: Int] = [:]
        for _ in 0..<70 { counts[scheduler.place(request(cpu: 10)).value!, default: 0] += 1 }
        #expect(counts.count == 7)
        #expect(counts.values.allSatisfy { $0 == 10 })
    }

    @Test func replicasSpreadEvenlyAcrossZones() {
        let nodes = ["a", "b", "c"].flatMap { (zone: String) in (1...3).map { node("\(zone)\($0)", zone: zone) } }
        var scheduler = Scheduler(nodes: nodes)
        var zones: [Character: Int] = [:]
        for i in 1...9 {
            zones[scheduler.place(request()).value!.first!, default: 0] += 1
            // After every placement the zones differ by at most one replica.
            #expect(zones.values.max()! - (zones.count == 3 ? zones.values.min()! : 0) <= 1, "after \(i)")
        }
        #expect(zones == ["a": 3, "b": 3, "c": 3])
    }

    @Test func nodeSpreadComesBeforeZoneSpread() {
        // Zone a has 4 nodes, b and c one each: the first three replicas go to three zones, but no node
        // takes a second replica while another has none.
        let nodes = [node("a1", zone: "a"), node("a2", zone: "a"), node("a3", zone: "a"), node("a4", zone: "a"),
                     node("b1", zone: "b"), node("c1", zone: "c")]
        var scheduler = Scheduler(nodes: nodes)
        let first = (0..<3).map { _ in scheduler.place(request()).value! }
        #expect(first == ["a1", "b1", "c1"])
        for _ in 0..<27 { _ = scheduler.place(request()) }
        #expect(nodes.map { scheduler.replicas(of: "default/web", on: $0.name) } == [5, 5, 5, 5, 5, 5])
    }

    @Test func nodesWithoutAZoneShareOne() {
        var scheduler = Scheduler(nodes: [node("x1"), node("x2"), node("z1", zone: "z")])
        #expect(scheduler.place(request()).value == "x1")
        // x2 has no replica but its zone ("") has one; z1's zone has none.
        #expect(scheduler.place(request()).value == "z1")
        #expect(scheduler.place(request()).value == "x2")
    }

    @Test func zoneSpreadIsAmongFeasibleNodes() {
        // The only zone-b node is full: replicas go to zone a instead of waiting.
        var scheduler = Scheduler(nodes: [node("a1", zone: "a"), node("a2", zone: "a"), node("b1", cpu: 100, zone: "b")])
        let placed = (0..<4).map { _ in scheduler.place(request(cpu: 500)).value! }
        #expect(placed.sorted() == ["a1", "a1", "a2", "a2"])
    }

    @Test func spreadIsPerDeployment() {
        var scheduler = Scheduler(nodes: [node("a"), node("b")])
        #expect(scheduler.place(request("ns/one")).value == "a")
        #expect(scheduler.place(request("ns/two")).value == "a")
        #expect(scheduler.place(request("ns/one")).value == "b")
        #expect(scheduler.replicas(of: "ns/one", on: "a") == 1)
        #expect(scheduler.replicas(of: "ns/two", on: "b") == 0)
    }

    @Test func leastAllocatedPrefersTheEmptiestNode() {
        var scheduler = Scheduler(nodes: [node("a"), node("b"), node("c")])
        scheduler.record(request("other/x", cpu: 3000), on: "a")
        scheduler.record(request("other/y", cpu: 1000), on: "b")
        #expect(scheduler.place(request(cpu: 500)).value == "c")
        // Capacity counts as a share: 2 of 16 cores free-er than 1 of 4.
        var shares = Scheduler(nodes: [node("big", cpu: 16000, memory: 8 * gi), node("small", cpu: 4000, memory: 8 * gi)])
        shares.record(request("other/x", cpu: 2000), on: "big")
        shares.record(request("other/y", cpu: 1000), on: "small")
        #expect(shares.place(request(cpu: 100)).value == "big")
    }

    @Test func leastAllocatedWeighsCPUAndMemoryEqually() {
        var scheduler = Scheduler(nodes: [node("cpu-busy"), node("mem-busy")])
        scheduler.record(request("other/x", cpu: 2000), on: "cpu-busy")   // 50% cpu
        scheduler.record(request("other/y", memory: 6 * gi), on: "mem-busy") // 75% memory
        #expect(scheduler.place(request()).value == "cpu-busy")
    }

    @Test func mostAllocatedPacksOntoTheFullestNodeThatFits() {
        var scheduler = Scheduler(nodes: [node("a"), node("b"), node("c")], policy: .mostAllocated)
        scheduler.record(request("other/x", cpu: 1000), on: "a")
        scheduler.record(request("other/y", cpu: 3000), on: "b")
        #expect(scheduler.place(request("ns/p", cpu: 500)).value == "b")
        #expect(scheduler.place(request("ns/q", cpu: 500)).value == "b")
        // b is full now.
        #expect(scheduler.place(request("ns/r", cpu: 500)).value == "a")
    }

    @Test func mostAllocatedStillSpreadsOneDeployment() {
        var scheduler = Scheduler(nodes: [node("a"), node("b"), node("c")], policy: .mostAllocated)
        let placed = (0..<3).map { _ in scheduler.place(request(cpu: 100)).value! }
        #expect(Set(placed) == ["a", "b", "c"])
    }

    @Test func tiesGoToTheSmallestNameWhateverTheInputOrder() {
        let names = ["n3", "n10", "n1", "n2"]
        var scheduler = Scheduler(nodes: names.map { node($0) })
        #expect(scheduler.place(request()).value == "n1")
        #expect(scheduler.place(request()).value == "n10")
        #expect(scheduler.place(request()).value == "n2")
        var reversed = Scheduler(nodes: names.reversed().map { node($0) })
        #expect(reversed.place(request()).value == "n1")
    }

    @Test func samePlacementsEveryRun() {
        let nodes = (0..<50).map { i in node("n\(i)", cpu: Int64(1000 + (i % 7) * 500), zone: "z\(i % 3)") }
        func run() -> [String] {
            var scheduler = Scheduler(nodes: nodes.shuffled())
            return (0..<200).compactMap { i in scheduler.place(request("ns/d\(i % 9)", cpu: Int64(50 + i % 5 * 40))).value }
        }
        #expect(run() == run())
    }

    @Test func duplicateNodeNamesAreKeptOnce() {
        let scheduler = Scheduler(nodes: [node("a"), node("a", cpu: 1)])
        #expect(scheduler.nodeNames == ["a"])
    }
}

@Suite("Scheduler: cluster objects")
struct SchedulerSnapshotTests {
    private func replica(_ name: String, deployment: String = "web", node: String, cpu: String? = nil, terminating: Bool = false,
                         hostPort: Int? = nil) -> Replica {
        var workload = WorkloadSpec(command: ["/bin/app"])
        if let cpu { workload.resources = ResourceRequirements(requests: ResourceList(cpu: cpu)) }
        if let hostPort { workload.ports = [ContainerPort(name: "http", hostPort: hostPort)] }
        var r = Replica(metadata: ObjectMeta(name: name, namespace: "default"),
                        spec: ReplicaSpec(deployment: deployment, node: node, templateHash: "h", template: workload))
        if terminating { r.metadata.deletionTimestamp = "2026-11-23T00:00:00Z" }
        return r
    }

    @Test func nodesAndReplicasBecomeAllocationsAndSpread() {
        let nodes = [
            Node(metadata: ObjectMeta(name: "a", labels: [SchedulingNode.zoneLabel: "z1"]),
                 spec: NodeSpec(taints: [Taint(key: "gpu")]), status: NodeStatus(ready: true, capacity: ResourceList(cpu: "2", memory: "4Gi"))),
            Node(metadata: ObjectMeta(name: "b"), status: NodeStatus(ready: true, capacity: ResourceList(cpu: "2", memory: "4Gi"))),
        ]
        let scheduler = Scheduler(nodes: nodes, replicas: [
            replica("r1", node: "b", cpu: "500m"), replica("r2", node: "b", cpu: "1", terminating: true),
            replica("r3", node: "", cpu: "1"), replica("r4", node: "gone", cpu: "1"),
        ])
        #expect(scheduler.allocated(on: "b")?.cpuMillicores == 1500)
        #expect(scheduler.allocated(on: "a")?.cpuMillicores == 0)
        // The terminating replica holds its resources but not its place in the spread.
        #expect(scheduler.replicas(of: "default/web", on: "b") == 1)
    }

    @Test func terminatingReplicasKeepTheirHostPorts() {
        let nodes = [Node(metadata: ObjectMeta(name: "a"), status: NodeStatus(ready: true))]
        var scheduler = Scheduler(nodes: nodes, replicas: [replica("old", node: "a", terminating: true, hostPort: 80)])
        let request = PlacementRequest(replica("new", node: "", hostPort: 80))
        #expect(scheduler.place(request).error?.count(.hostPorts) == 1)
    }

    @Test func requestsComeFromTheTemplate() {
        var workload = WorkloadSpec(command: ["/bin/app"], ports: [ContainerPort(name: "http", containerPort: 8080), ContainerPort(name: "dns", protocol: "UDP", hostPort: 53)],
                                    resources: ResourceRequirements(requests: ResourceList(memory: "64Mi"), limits: ResourceList(cpu: "250m", memory: "1Gi")),
                                    nodeSelector: ["disk": "ssd"], tolerations: [Toleration(key: "spot", operator: "Exists")])
        var request = PlacementRequest(spreadKey: "ns/web", workload: workload)
        // cpu falls back to the limit; memory takes the request; containerPort alone holds no host port.
        #expect(request.cpuMillicores == 250)
        #expect(request.memoryBytes == 64 << 20)
        #expect(request.hostPorts == [HostPort(port: 53, protocol: "UDP")])
        #expect(request.nodeSelector == ["disk": "ssd"])
        #expect(request.tolerations.count == 1)
        workload.resources = nil
        request = PlacementRequest(spreadKey: "ns/web", workload: workload)
        #expect(request.cpuMillicores == 0 && request.memoryBytes == 0)
    }

    @Test func nodeTaintsAreValidated() {
        var node = Node(metadata: ObjectMeta(name: "a", labels: ["ok": "yes"]), spec: NodeSpec(taints: [Taint(key: "gpu"), Taint(key: "gpu"), Taint(key: "x", effect: "NoExecute")]))
        let errors = Validation.validate(node)
        #expect(errors.map(\.path) == ["spec.taints[1].key", "spec.taints[2].effect"])
        node.spec?.taints = [Taint(key: "example.com/gpu", value: "a100")]
        #expect(Validation.validate(node) == [])
    }
}
