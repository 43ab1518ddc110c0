import Testing
@testable import WeftCore

/// An instant the test moves by hand.
private struct At: InstantProtocol {
    var offset: Duration
    func advanced(by duration: Duration) -> At { At(offset: offset + duration) }
    func duration(to other: At) -> Duration { other.offset - offset }
    static func < (a: At, b: At) -> Bool { a.offset < b.offset }
}

private func t(_ seconds: Double) -> At { At(offset: .milliseconds(Int64(seconds * 1000))) }

@Suite("Node leases")
struct NodeLeasesTests {
    @Test func aNodeExpiresGraceAfterItsLastNewHeartbeat() {
        var leases = NodeLeases<At>(grace: .seconds(5))
        let moved1 = leases.observe(node: "n1", heartbeat: "h1", ready: true, at: t(0))
        #expect(moved1)
        #expect(leases.nextExpiry == t(5))
        #expect(leases.expired(at: t(4.9)).isEmpty)
        // A new heartbeat renews the lease; it only moves the deadline later, so no timer needs resetting.
        let moved2 = leases.observe(node: "n1", heartbeat: "h2", ready: true, at: t(3))
        #expect(!moved2)
        #expect(leases.nextExpiry == t(8))
        #expect(leases.expired(at: t(7.9)).isEmpty)
        let expired = leases.expired(at: t(8))
        #expect(expired.map(\.name) == ["n1"] && expired.first?.heartbeat == "h2" && expired.first?.silentFor == .seconds(5))
    }

    @Test func changesThatAreNotHeartbeatsDoNotRenew() {
        var leases = NodeLeases<At>(grace: .seconds(5))
        leases.observe(node: "n1", heartbeat: "h1", ready: true, at: t(0))
        // A cordon, or any other write that keeps the heartbeat, at t=4.
        leases.observe(node: "n1", heartbeat: "h1", ready: true, at: t(4))
        #expect(leases.expired(at: t(5)).map(\.name) == ["n1"])
    }

    @Test func aNotReadyNodeDoesNotExpireAgainAndComesBackWithAHeartbeat() {
        var leases = NodeLeases<At>(grace: .seconds(5))
        leases.observe(node: "n1", heartbeat: "h1", ready: true, at: t(0))
        leases.markedNotReady("n1")
        #expect(leases.expired(at: t(60)).isEmpty)
        #expect(leases.nextExpiry == nil)
        // The control plane's own write (ready: false, same heartbeat) changes nothing more.
        let moved3 = leases.observe(node: "n1", heartbeat: "h1", ready: false, at: t(6))
        #expect(!moved3)
        // The agent heartbeats again: Ready, and a fresh lease (readiness changed: reset the timer).
        let moved4 = leases.observe(node: "n1", heartbeat: "h2", ready: true, at: t(61))
        #expect(moved4)
        #expect(leases.isReady("n1") == true)
        #expect(leases.nextExpiry == t(66))
        // Turning ready renews even when the heartbeat text is the same (two heartbeats in one tick).
        leases.markedNotReady("n1")
        leases.observe(node: "n1", heartbeat: "h2", ready: true, at: t(70))
        #expect(leases.expired(at: t(74)).isEmpty)
    }

    @Test func nodesKnownAtStartGetTheStartupGrace() {
        var leases = NodeLeases<At>(grace: .seconds(5), startupGrace: .seconds(15))
        leases.start(with: [("old", "h0", true), ("gone", "h0", false)], at: t(100))
        #expect(leases.expired(at: t(110)).isEmpty, "a restarted control plane waits for agents to catch up")
        #expect(leases.expired(at: t(115)).map(\.name) == ["old"])
        #expect(leases.expired(at: t(115)).first?.silentFor == .seconds(15))
        // A heartbeat after the start is judged by the normal grace.
        leases.observe(node: "old", heartbeat: "h1", ready: true, at: t(101))
        #expect(leases.nextExpiry == t(106))
        // A node registered after the start gets the normal grace too.
        leases.observe(node: "new", heartbeat: "h1", ready: true, at: t(102))
        #expect(leases.expired(at: t(107)).map(\.name) == ["new", "old"])
    }

    @Test func theNextExpiryIsTheEarliestReadyLeaseAndRemovedNodesAreForgotten() {
        var leases = NodeLeases<At>(grace: .seconds(5))
        leases.observe(node: "a", heartbeat: "1", ready: true, at: t(2))
        leases.observe(node: "b", heartbeat: "1", ready: true, at: t(1))
        leases.observe(node: "c", heartbeat: "1", ready: false, at: t(0))
        #expect(leases.nextExpiry == t(6))
        leases.remove(node: "b")
        #expect(leases.nextExpiry == t(7))
        #expect(leases.isReady("b") == nil)
        #expect(leases.expired(at: t(100)).map(\.name) == ["a"])
    }

    @Test func startupGraceIsNeverShorterThanTheGrace() {
        let leases = NodeLeases<At>(grace: .seconds(30), startupGrace: .seconds(15))
        #expect(leases.startupGrace == .seconds(30))
    }
}

@Suite("Lost replicas")
struct LostReplicaTests {
    private typealias View = DeploymentPlan.ReplicaView

    @Test func replicasOfANotReadyNodeAreDeletedAndReplaced() {
        let replicas = [
            View(name: "a", templateHash: "h", ready: true, terminating: false, createdRevision: 1),
            View(name: "b", templateHash: "h", ready: true, terminating: false, createdRevision: 2, lost: true),
            View(name: "c", templateHash: "h", ready: true, terminating: false, createdRevision: 3, lost: true),
        ]
        let plan = DeploymentPlan.plan(desired: 3, templateHash: "h", strategy: nil, generation: 1, replicas: replicas)
        #expect(plan.create == 2)
        #expect(plan.delete == ["b", "c"])
        #expect(plan.status.replicas == 1 && plan.status.readyReplicas == 1)
    }

    @Test func onceReplacedTheLostOnesNoLongerCount() {
        // After the plan above ran: b and c terminating (still on their node), two replacements starting.
        let replicas = [
            View(name: "a", templateHash: "h", ready: true, terminating: false, createdRevision: 1),
            View(name: "b", templateHash: "h", ready: true, terminating: true, createdRevision: 2, lost: true),
            View(name: "c", templateHash: "h", ready: false, terminating: true, createdRevision: 3, lost: true),
            View(name: "d", templateHash: "h", ready: false, terminating: false, createdRevision: 4),
            View(name: "e", templateHash: "h", ready: false, terminating: false, createdRevision: 5),
        ]
        let plan = DeploymentPlan.plan(desired: 3, templateHash: "h", strategy: nil, generation: 1, replicas: replicas)
        #expect(plan.create == 0 && plan.delete.isEmpty)
        #expect(plan.status.replicas == 3)
    }

    @Test func aRollingUpdateDuringAnOutageStaysWithinTheSurge() {
        // 4 desired, surge 1: two old replicas on a lost node, two old elsewhere, none new yet.
        let replicas = [
            View(name: "o1", templateHash: "old", ready: true, terminating: false, createdRevision: 1, lost: true),
            View(name: "o2", templateHash: "old", ready: true, terminating: false, createdRevision: 2, lost: true),
            View(name: "o3", templateHash: "old", ready: true, terminating: false, createdRevision: 3),
            View(name: "o4", templateHash: "old", ready: true, terminating: false, createdRevision: 4),
        ]
        let plan = DeploymentPlan.plan(desired: 4, templateHash: "new", strategy: nil, generation: 2, replicas: replicas)
        #expect(plan.delete.starts(with: ["o1", "o2"]))
        let (surge, _) = DeploymentPlan.rollingBounds(desired: 4, strategy: nil)
        let liveAfter = 2 - plan.delete.filter { $0 == "o3" || $0 == "o4" }.count + plan.create
        #expect(liveAfter <= 4 + surge)
    }
}

@Suite("Node settings text")
struct NodeSettingsTextTests {
    @Test func capacityAndLabelsParse() throws {
        #expect(try NodeSettingsText.capacity("cpu=4,memory=8Gi") == ResourceList(cpu: "4", memory: "8Gi"))
        #expect(try NodeSettingsText.capacity("cpu=1500m") == ResourceList(cpu: "1500m"))
        #expect(try NodeSettingsText.labels("zone=a,disk=ssd") == ["zone": "a", "disk": "ssd"])
        #expect(try NodeSettingsText.labels("topology.weft.io/zone=b") == ["topology.weft.io/zone": "b"])
        #expect(try NodeSettingsText.labels("") == [:])
    }

    @Test(arguments: [
        ("cpu=four", "CPU quantity"), ("memory=8GB", "memory quantity"), ("disk=1", "unknown resource"),
        ("cpu", "not key=value"), ("cpu=1,cpu=2", "twice"), ("cpu=0", "CPU quantity"),
    ])
    func badCapacityIsRefused(text: String, message: String) {
        #expect { try NodeSettingsText.capacity(text) } throws: { "\($0)".contains(message) }
    }

    @Test(arguments: [("zone", "not key=value"), ("-bad=x", "label key"), ("zone=a b", "label value"), ("=x", "not key=value")])
    func badLabelsAreRefused(text: String, message: String) {
        #expect { try NodeSettingsText.labels(text) } throws: { "\($0)".contains(message) }
    }
}

@Suite("Endpoints on NotReady nodes")
struct UnavailableNodeEndpointsTests {
    @Test func replicasOnNotReadyNodesAreLeftOut() throws {
        let service = Service(metadata: ObjectMeta(name: "web", namespace: "default"),
                              spec: ServiceSpec(selector: ["app": "web"], ports: [ServicePort(port: 80, targetPort: .name("http"))]))
        func replica(_ name: String, node: String) -> Replica {
            Replica(metadata: ObjectMeta(name: name, namespace: "default", labels: ["app": "web"]),
                    spec: ReplicaSpec(deployment: "web", node: node, templateHash: "h",
                                      template: WorkloadSpec(command: ["x"], ports: [ContainerPort(name: "http")])),
                    status: ReplicaStatus(phase: .ready, ready: true, address: "127.0.0.1", ports: ["http": 8000 + name.count]))
        }
        let replicas = [replica("a", node: "n1"), replica("bb", node: "n2")]
        #expect(Endpoints.compute(for: service, replicas: replicas).map(\.replica) == ["a", "bb"])
        #expect(Endpoints.compute(for: service, replicas: replicas, unavailableNodes: ["n2"]).map(\.replica) == ["a"])
    }
}
