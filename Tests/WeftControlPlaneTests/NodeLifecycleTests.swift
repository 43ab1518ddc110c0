import Foundation
import Logging
import Synchronization
import Testing
import WeftControlPlane
import WeftCore
import WeftStore

@Suite("Node failure detection")
struct NodeLifecycleTests {
    private func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
    }

    private func node(_ name: String) -> Node {
        Node(metadata: ObjectMeta(name: name), status: NodeStatus(ready: true, addresses: ["127.0.0.1"], capacity: ResourceList(cpu: "4", memory: "8Gi")))
    }

    /// Reports every replica bound to `node` ready, as its agent would.
    private func runReplicas(on node: String, _ registry: Registry) async throws {
        for (replica, _) in try await registry.typedList(Replica.self, namespace: "default")
        where replica.spec.node == node && !replica.isTerminating && replica.status?.ready != true {
            _ = try await registry.updateReplicaStatus(namespace: "default", name: replica.name,
                                                       status: ReplicaStatus(phase: .ready, ready: true, address: "127.0.0.1", ports: ["http": 9000]))
        }
    }

    @Test("a silent node becomes NotReady after the grace; its endpoints go at once, its replicas are replaced on the ready node; its heartbeat makes it Ready without bringing them back")
    func silentNodeIsReplaced() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            let logger = Logger(label: "test")
            let controllers = Task {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await DeploymentController(registry: registry, logger: logger).run() }
                    group.addTask { try await EndpointsController(registry: registry, logger: logger).run() }
                    group.addTask { try await NodeLifecycleController(registry: registry, grace: .milliseconds(600), startupGrace: .milliseconds(600), logger: logger).run() }
                }
            }
            defer { controllers.cancel() }
            // Two agents heartbeat every 100 ms; n2's falls silent when asked.
            let silent = Switch()
            let lastN2Heartbeat = Mutex(ContinuousClock.now)
            let heartbeats = Task {
                while !Task.isCancelled {
                    _ = try? await registry.putNode(node("n1"))
                    if !silent.isOn {
                        // Taken before the write: the server stamps the heartbeat no earlier than this.
                        let sent = ContinuousClock.now
                        _ = try? await registry.putNode(node("n2"))
                        lastN2Heartbeat.withLock { $0 = sent }
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { heartbeats.cancel() }

            let manifest = try JSONValue.parse(Data("""
                {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"web"},
                 "spec":{"replicas":2,"template":{"metadata":{"labels":{"app":"web"}},"spec":{"command":["x"],"ports":[{"name":"http"}]}}}}
                """.utf8))
            let service = try JSONValue.parse(Data("""
                {"apiVersion":"weft/v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}]}}
                """.utf8))
            try await eventually("both nodes registered") { try await registry.typedList(Node.self, namespace: nil).count == 2 }
            _ = try await registry.apply([manifest, service], namespace: "default")
            try await eventually("one replica per node") {
                Set(try await registry.typedList(Replica.self, namespace: "default").map(\.object.spec.node)) == ["n1", "n2"]
            }
            try await runReplicas(on: "n1", registry)
            try await runReplicas(on: "n2", registry)
            try await eventually("two endpoints") { try await registry.typed(Endpoints.self, namespace: "default", name: "web")?.0.endpoints.count == 2 }
            // Heartbeats at 100 ms keep both Ready well past the grace.
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await registry.typedList(Node.self, namespace: nil).allSatisfy { $0.object.status?.ready == true })

            silent.isOn = true
            try await eventually("n2 NotReady") { try await registry.typed(Node.self, namespace: "", name: "n2")?.0.status?.ready == false }
            // Measured from n2's last heartbeat (a loaded machine can delay the heartbeat loop, so the
            // moment of silencing says little): not before the 600 ms grace, and not long after it.
            let detectedAfter = ContinuousClock.now - lastN2Heartbeat.withLock { $0 }
            #expect(detectedAfter >= .milliseconds(550) && detectedAfter < .seconds(3), "detected after \(detectedAfter)")
            #expect(try await registry.typed(Node.self, namespace: "", name: "n2")?.0.status?.message?.contains("no heartbeat") == true)
            try await eventually("n2's endpoint gone") {
                try await registry.typed(Endpoints.self, namespace: "default", name: "web")?.0.endpoints.map(\.node) == ["n1"]
            }
            try await eventually("n2's replica terminating, a replacement on n1") {
                let all = try await registry.typedList(Replica.self, namespace: "default").map(\.object)
                let live = all.filter { !$0.isTerminating }
                return live.count == 2 && live.allSatisfy { $0.spec.node == "n1" } && all.contains { $0.spec.node == "n2" && $0.isTerminating }
            }

            // n2 comes back: Ready again, and its old replica stays terminating (its agent stops it).
            silent.isOn = false
            try await eventually("n2 Ready") { try await registry.typed(Node.self, namespace: "", name: "n2")?.0.status?.ready == true }
            try await Task.sleep(for: .milliseconds(300))
            let all = try await registry.typedList(Replica.self, namespace: "default").map(\.object)
            #expect(all.filter { !$0.isTerminating }.count == 2)
            let onN2 = all.filter { $0.spec.node == "n2" }
            #expect(!onN2.isEmpty && onN2.allSatisfy { $0.isTerminating })
        }
    }

    @Test("replicas bound to a deleted node are removed and replaced")
    func deletedNode() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            let logger = Logger(label: "test")
            let controller = Task { try await DeploymentController(registry: registry, logger: logger).run() }
            defer { controller.cancel() }
            _ = try await registry.putNode(node("n1"))
            _ = try await registry.apply([RegistryFixture.deployment("web", replicas: 2)], namespace: "default")
            try await eventually("2 replicas on n1") {
                try await registry.typedList(Replica.self, namespace: "default").filter { $0.object.spec.node == "n1" }.count == 2
            }
            _ = try await registry.putNode(node("n2"))
            _ = try await registry.delete(.node, namespace: "", name: "n1")
            try await eventually("replicas of n1 gone, 2 on n2") {
                let all = try await registry.typedList(Replica.self, namespace: "default").map(\.object)
                return all.count == 2 && all.allSatisfy { $0.spec.node == "n2" }
            }
        }
    }
}

private final class Switch: Sendable {
    private let state = Mutex(false)
    var isOn: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
