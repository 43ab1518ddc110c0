import Foundation
import Logging
import Testing
import WeftControlPlane
import WeftCore
import WeftStore

/// The registry over a real SQLite store in a temporary directory.
struct RegistryFixture {
    let directory: URL
    let store: SQLiteStore
    let registry: Registry

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-registry-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(path: directory.appendingPathComponent("state.db").path, logger: Logger(label: "test"))
        registry = Registry(store: store, logger: Logger(label: "test"))
    }

    func close() async {
        try? await store.close()
        try? FileManager.default.removeItem(at: directory)
    }

    static func deployment(_ name: String, replicas: Int = 2, command: String = "weft-demo") -> JSONValue {
        try! JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"\(name)"},
             "spec":{"replicas":\(replicas),"template":{"metadata":{"labels":{"app":"\(name)"}},"spec":{"command":["\(command)"]}}}}
            """.utf8))
    }

    static func service(_ name: String, port: Int = 80) -> JSONValue {
        try! JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Service","metadata":{"name":"\(name)"},
             "spec":{"selector":{"app":"\(name)"},"ports":[{"port":\(port)}]}}
            """.utf8))
    }
}

func withRegistry(_ body: (RegistryFixture) async throws -> Void) async throws {
    let fixture = try RegistryFixture()
    do {
        try await body(fixture)
    } catch {
        await fixture.close()
        throw error
    }
    await fixture.close()
}

@Suite("Registry")
struct RegistryTests {
    @Test("apply creates, then reports unchanged, then configured with a new generation")
    func applyLifecycle() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry

            let first = try await registry.apply([RegistryFixture.deployment("cart"), RegistryFixture.service("cart")], namespace: "default")
            #expect(first.map(\.action) == ["created", "created"])
            let (created, _) = try #require(try await registry.typed(Deployment.self, namespace: "default", name: "cart"))
            #expect(created.metadata.generation == 1)
            #expect(created.metadata.uid != nil)
            #expect(created.metadata.creationTimestamp != nil)

            let again = try await registry.apply([RegistryFixture.deployment("cart")], namespace: "default")
            #expect(again.map(\.action) == ["unchanged"])

            let changed = try await registry.apply([RegistryFixture.deployment("cart", replicas: 5)], namespace: "default")
            #expect(changed.map(\.action) == ["configured"])
            let (updated, _) = try #require(try await registry.typed(Deployment.self, namespace: "default", name: "cart"))
            #expect(updated.metadata.generation == 2)
            #expect(updated.metadata.uid == created.metadata.uid)
            #expect(updated.spec.replicas == 5)
            #expect(updated.revision > created.revision)
        }
    }

    @Test("a batch with one invalid document stores nothing and names the document and field")
    func applyAllOrNothing() async throws {
        try await withRegistry { fixture in
            let before = try await fixture.store.currentRevision()
            await #expect {
                _ = try await fixture.registry.apply([RegistryFixture.deployment("ok"), RegistryFixture.deployment("bad", replicas: 5000)], namespace: "default")
            } throws: { error in
                guard let failure = error as? APIFailure else { return false }
                return failure.code == 422 && failure.details.count == 1 && failure.details[0].document == 1
                    && failure.details[0].path == "spec.replicas" && failure.details[0].object == "Deployment/bad"
            }
            #expect(try await fixture.store.currentRevision() == before)
            #expect(try await fixture.registry.typed(Deployment.self, namespace: "default", name: "ok") == nil)
        }
    }

    @Test("the same object twice in one apply is refused")
    func duplicateInBatch() async throws {
        try await withRegistry { fixture in
            await #expect(throws: APIFailure.self) {
                _ = try await fixture.registry.apply([RegistryFixture.service("a"), RegistryFixture.service("a", port: 81)], namespace: "default")
            }
        }
    }

    @Test("deleting a replica marks it terminating; the final delete removes it")
    func gracefulReplicaDelete() async throws {
        try await withRegistry { fixture in
            var metadata = ObjectMeta(name: "cart-abc-xyz12", namespace: "default")
            metadata.uid = "u"
            let replica = Replica(metadata: metadata,
                                  spec: ReplicaSpec(deployment: "cart", node: "n1", templateHash: "h", template: WorkloadSpec(command: ["x"])),
                                  status: ReplicaStatus(phase: .ready, ready: true))
            let key = ObjectKey(kind: "Replica", namespace: "default", name: replica.name)
            let encoder = JSONEncoder()
            try await fixture.store.commit([.create(key, try encoder.encode(replica))])

            _ = try await fixture.registry.delete(.replica, namespace: "default", name: replica.name)
            let (marked, _) = try #require(try await fixture.registry.typed(Replica.self, namespace: "default", name: replica.name))
            #expect(marked.isTerminating)
            #expect(marked.status?.phase == .terminating)
            #expect(marked.status?.ready == false)

            // A status report from the agent cannot make a terminating replica ready again.
            _ = try await fixture.registry.updateReplicaStatus(namespace: "default", name: replica.name, status: ReplicaStatus(phase: .ready, ready: true))
            let (reported, _) = try #require(try await fixture.registry.typed(Replica.self, namespace: "default", name: replica.name))
            #expect(reported.status?.phase == .terminating)
            #expect(reported.status?.ready == false)

            _ = try await fixture.registry.delete(.replica, namespace: "default", name: replica.name, final: true)
            #expect(try await fixture.registry.typed(Replica.self, namespace: "default", name: replica.name) == nil)
            await #expect(throws: APIFailure.self) {
                _ = try await fixture.registry.delete(.replica, namespace: "default", name: replica.name, final: true)
            }
        }
    }

    @Test("scale validates its range and bumps the generation")
    func scale() async throws {
        try await withRegistry { fixture in
            _ = try await fixture.registry.apply([RegistryFixture.deployment("web")], namespace: "default")
            _ = try await fixture.registry.scale(namespace: "default", name: "web", replicas: 7)
            let (scaled, _) = try #require(try await fixture.registry.typed(Deployment.self, namespace: "default", name: "web"))
            #expect(scaled.spec.replicas == 7)
            #expect(scaled.metadata.generation == 2)
            await #expect(throws: APIFailure.self) { _ = try await fixture.registry.scale(namespace: "default", name: "web", replicas: -1) }
            await #expect(throws: APIFailure.self) { _ = try await fixture.registry.scale(namespace: "default", name: "nope", replicas: 1) }
        }
    }

    @Test("putNode registers once, keeps uid and creation time on heartbeats, and stamps each heartbeat with the server's time")
    func nodeHeartbeat() async throws {
        try await withRegistry { fixture in
            let t1 = Date(timeIntervalSince1970: 1_767_225_600)
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true, lastHeartbeat: "node clock")), now: t1)
            let (first, _) = try #require(try await fixture.registry.typed(Node.self, namespace: "", name: "n1"))
            #expect(first.status?.lastHeartbeat == "2026-01-01T00:00:00.000Z")
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true, lastHeartbeat: "node clock")), now: t1 + 2)
            let (second, _) = try #require(try await fixture.registry.typed(Node.self, namespace: "", name: "n1"))
            #expect(second.metadata.uid == first.metadata.uid)
            #expect(second.metadata.creationTimestamp == first.metadata.creationTimestamp)
            #expect(second.status?.lastHeartbeat == "2026-01-01T00:00:02.000Z")
        }
    }

    @Test("a heartbeat without a spec keeps the stored cordon and taints; one with a spec replaces them")
    func heartbeatKeepsSpec() async throws {
        try await withRegistry { fixture in
            let spec = NodeSpec(unschedulable: true, taints: [Taint(key: "gpu", value: "yes", effect: "NoSchedule")])
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), spec: spec, status: NodeStatus(ready: true)))
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true, lastHeartbeat: "t2")))
            let (kept, _) = try #require(try await fixture.registry.typed(Node.self, namespace: "", name: "n1"))
            #expect(kept.spec == spec)
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "n1"), spec: NodeSpec(), status: NodeStatus(ready: true)))
            let (replaced, _) = try #require(try await fixture.registry.typed(Node.self, namespace: "", name: "n1"))
            #expect(replaced.spec == NodeSpec())
        }
    }
}
