import Foundation
import Logging
import Testing
import WeftControlPlane
import WeftCore
import WeftStore

@Suite("Deployment controller")
struct DeploymentControllerTests {
    /// Runs the controller against the fixture's store while `body` runs.
    private func withController(_ body: @escaping (RegistryFixture) async throws -> Void) async throws {
        try await withRegistry { fixture in
            let controller = DeploymentController(registry: fixture.registry, logger: Logger(label: "test"))
            let running = Task { try await controller.run() }
            defer { running.cancel() }
            try await body(fixture)
        }
    }

    private func replicas(_ fixture: RegistryFixture, of deployment: String) async throws -> [Replica] {
        try await fixture.registry.typedList(Replica.self, namespace: "default").map(\.object).filter { $0.spec.deployment == deployment }
    }

    private func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test("creates replicas on a ready node, scales down, and marks replicas of a deleted deployment terminating")
    func lifecycle() async throws {
        try await withController { fixture in
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true)))
            _ = try await fixture.registry.apply([RegistryFixture.deployment("cart", replicas: 3)], namespace: "default")
            try await eventually("3 replicas") { try await replicas(fixture, of: "cart").count == 3 }
            let created = try await replicas(fixture, of: "cart")
            #expect(created.allSatisfy { $0.spec.node == "n1" && $0.status?.phase == .pending && $0.name.hasPrefix("cart-") })
            #expect(created.allSatisfy { $0.metadata.labels == ["app": "cart"] })
            #expect(Set(created.map(\.spec.templateHash)).count == 1)

            _ = try await fixture.registry.scale(namespace: "default", name: "cart", replicas: 1)
            try await eventually("2 replicas terminating") { try await replicas(fixture, of: "cart").filter(\.isTerminating).count == 2 }
            try await eventually("status counts") {
                let deployment = try await fixture.registry.typed(Deployment.self, namespace: "default", name: "cart")?.0
                return deployment?.status?.replicas == 1 && deployment?.status?.observedGeneration == 2
            }

            _ = try await fixture.registry.delete(.deployment, namespace: "default", name: "cart")
            try await eventually("all replicas terminating") { try await replicas(fixture, of: "cart").allSatisfy(\.isTerminating) }
        }
    }

    @Test("replicas wait for a node and are bound when one becomes ready")
    func waitsForNode() async throws {
        try await withController { fixture in
            _ = try await fixture.registry.apply([RegistryFixture.deployment("web", replicas: 2)], namespace: "default")
            try await eventually("2 unbound replicas") { try await replicas(fixture, of: "web").filter { $0.spec.node.isEmpty }.count == 2 }
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "late"), status: NodeStatus(ready: true)))
            try await eventually("replicas bound to the new node") { try await replicas(fixture, of: "web").allSatisfy { $0.spec.node == "late" } }
        }
    }

    @Test("a template change rolls replicas over to the new template")
    func rollingUpdate() async throws {
        try await withController { fixture in
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true)))
            _ = try await fixture.registry.apply([RegistryFixture.deployment("api", replicas: 2)], namespace: "default")
            try await eventually("2 replicas") { try await replicas(fixture, of: "api").count == 2 }
            let oldHash = try await replicas(fixture, of: "api")[0].spec.templateHash
            _ = try await fixture.registry.apply([RegistryFixture.deployment("api", replicas: 2, command: "other")], namespace: "default")
            // Nothing becomes ready here (no agent), so old unready replicas are replaced straight away.
            try await eventually("new replicas of the new template, old ones terminating") {
                let all = try await replicas(fixture, of: "api")
                let live = all.filter { !$0.isTerminating }
                return live.count == 2 && live.allSatisfy { $0.spec.templateHash != oldHash && $0.spec.template.command == ["other"] }
                    && all.filter { $0.spec.templateHash == oldHash }.allSatisfy(\.isTerminating)
            }
        }
    }

    private func node(_ name: String, cpu: String = "2", memory: String = "4Gi", labels: [String: String]? = nil, taints: [Taint]? = nil) -> Node {
        Node(metadata: ObjectMeta(name: name, labels: labels), spec: NodeSpec(taints: taints),
             status: NodeStatus(ready: true, capacity: ResourceList(cpu: cpu, memory: memory)))
    }

    /// A deployment whose template's spec carries `extra` JSON members.
    private func deployment(_ name: String, replicas: Int, extra: String) throws -> JSONValue {
        try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"\(name)"},
             "spec":{"replicas":\(replicas),"template":{"metadata":{"labels":{"app":"\(name)"}},"spec":{"command":["weft-demo"],\(extra)}}}}
            """.utf8))
    }

    @Test("a replica that requests more cpu than any node has stays Pending with the reason, and is placed when a big enough node joins")
    func insufficientCPU() async throws {
        try await withController { fixture in
            _ = try await fixture.registry.putNode(node("n1", cpu: "2"))
            _ = try await fixture.registry.putNode(node("n2", cpu: "1"))
            _ = try await fixture.registry.apply([try deployment("big", replicas: 1, extra: #""resources":{"requests":{"cpu":"3"}}"#)], namespace: "default")
            try await eventually("a pending replica with the reason") {
                let all = try await replicas(fixture, of: "big")
                return all.count == 1 && all[0].spec.node.isEmpty && all[0].status?.phase == .pending
                    && all[0].status?.message == "0/2 nodes available: 2 insufficient cpu"
            }
            _ = try await fixture.registry.putNode(node("n3", cpu: "4"))
            try await eventually("the replica bound to the new node") {
                let all = try await replicas(fixture, of: "big")
                return all.count == 1 && all[0].spec.node == "n3" && all[0].status?.message == nil
            }
        }
    }

    @Test("nodeSelector and tolerations steer replicas to the labelled, tainted node; capacity already requested counts")
    func nodeSelectorAndTaints() async throws {
        try await withController { fixture in
            _ = try await fixture.registry.putNode(node("plain"))
            _ = try await fixture.registry.putNode(node("ssd", labels: ["disk": "ssd"]))
            _ = try await fixture.registry.putNode(node("gpu", labels: ["disk": "ssd"], taints: [Taint(key: "gpu")]))
            _ = try await fixture.registry.apply([try deployment("db", replicas: 2, extra: #""nodeSelector":{"disk":"ssd"},"resources":{"requests":{"cpu":"1"}}"#)],
                                                 namespace: "default")
            try await eventually("both replicas on the untainted ssd node") {
                let all = try await replicas(fixture, of: "db")
                return all.count == 2 && all.allSatisfy { $0.spec.node == "ssd" }
            }
            _ = try await fixture.registry.scale(namespace: "default", name: "db", replicas: 3)
            try await eventually("the third replica pending: the ssd node is full") {
                try await replicas(fixture, of: "db").contains {
                    $0.spec.node.isEmpty && $0.status?.message == "0/3 nodes available: 1 node(s) didn't match nodeSelector, 1 node(s) had untolerated taint(s), 1 insufficient cpu"
                }
            }
            _ = try await fixture.registry.apply([try deployment("ml", replicas: 1, extra: #""tolerations":[{"key":"gpu","operator":"Exists"}],"nodeSelector":{"disk":"ssd"}"#)],
                                                 namespace: "default")
            try await eventually("the tolerating replica on the gpu node") {
                try await replicas(fixture, of: "ml").first?.spec.node == "gpu"
            }
        }
    }

    @Test("replicas of a deployment spread across nodes and zones")
    func spreadsAcrossZones() async throws {
        try await withController { fixture in
            for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
                _ = try await fixture.registry.putNode(node(name, labels: [SchedulingNode.zoneLabel: zone]))
            }
            _ = try await fixture.registry.apply([RegistryFixture.deployment("web", replicas: 4)], namespace: "default")
            try await eventually("2 replicas per zone, one per zone-a node") {
                let nodes = try await replicas(fixture, of: "web").map(\.spec.node).sorted()
                return nodes == ["a1", "a2", "b1", "b1"]
            }
        }
    }
}
