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
}
