import Foundation
import Logging
import Testing
import WeftControlPlane
import WeftCore
import WeftPKI
import WeftStore

/// A registry whose Secrets are encrypted with a key file, over a real SQLite file.
private struct EncryptedFixture {
    let directory: URL
    let store: SQLiteStore
    let registry: Registry
    let keyPath: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-secrets-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keyPath = directory.appendingPathComponent("secrets.key").path
        store = try SQLiteStore(path: directory.appendingPathComponent("state.db").path, logger: Logger(label: "test"))
        registry = Registry(store: store, secretsKey: try SecretsKey.loadOrCreate(path: keyPath), logger: Logger(label: "test"))
    }

    /// Every byte of the database, its WAL and shared memory files.
    func databaseBytes() throws -> Data {
        var all = Data()
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            all += (try? Data(contentsOf: directory.appendingPathComponent(name))) ?? Data()
        }
        return all
    }

    func close() async {
        try? await store.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

private func document(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

@Suite("Secrets at rest")
struct SecretStorageTests {
    static let password = "correct-horse-battery-staple-7731"

    @Test("a stored secret is neither plain text nor base64 in the database file, and reads back decrypted")
    func encryptedAtRest() async throws {
        let fixture = try EncryptedFixture()
        defer { Task { await fixture.close() } }
        #expect(try SecureFile.mode(of: fixture.keyPath) == 0o600)
        let encoded = Data(Self.password.utf8).base64EncodedString()
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"\(Self.password)"}}
            """)], namespace: "default")
        // Update it too, so the event history holds two versions.
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"\(Self.password)","user":"admin-user-42"}}
            """)], namespace: "default")

        let bytes = try fixture.databaseBytes()
        #expect(!bytes.isEmpty)
        for needle in [Self.password, encoded, "admin-user-42", Data("admin-user-42".utf8).base64EncodedString()] {
            #expect(bytes.range(of: Data(needle.utf8)) == nil, "the database holds \(needle)")
        }
        #expect(bytes.range(of: SecretsKey.envelopePrefix) != nil)

        let secret = try #require(try await fixture.registry.typed(Secret.self, namespace: "default", name: "db")?.0)
        #expect(secret.contents["password"] == Data(Self.password.utf8))
        #expect(secret.data?["password"] == encoded)
        let listed = try await fixture.registry.list(.secret, namespace: "default").items
        #expect(listed.first?["data"]?["user"]?.stringValue == Data("admin-user-42".utf8).base64EncodedString())

        // The raw store (below the registry) holds sealed bytes.
        let raw = try #require(try await fixture.store.get(ObjectKey(kind: "Secret", namespace: "default", name: "db")))
        #expect(SecretsKey.isSealed(raw.data))
        // ConfigMaps are not encrypted.
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"ConfigMap","metadata":{"name":"web"},"data":{"greeting":"plain-greeting-value"}}
            """)], namespace: "default")
        let rawConfigMap = try #require(try await fixture.store.get(ObjectKey(kind: "ConfigMap", namespace: "default", name: "web")))
        #expect(String(decoding: rawConfigMap.data, as: UTF8.self).contains("plain-greeting-value"))
    }

    @Test("watchers of secrets see decrypted objects, history and live")
    func watchDecrypts() async throws {
        let fixture = try EncryptedFixture()
        defer { Task { await fixture.close() } }
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"first"}}
            """)], namespace: "default")
        var events = fixture.registry.store.watch(kind: "Secret", namespace: nil, after: 0).makeAsyncIterator()
        let first = try #require(try await events.next())
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"second"}}
            """)], namespace: "default")
        let second = try #require(try await events.next())
        let decoder = JSONDecoder()
        #expect(try decoder.decode(Secret.self, from: first.object.data).contents["k"] == Data("first".utf8))
        #expect(second.type == .modified)
        #expect(try decoder.decode(Secret.self, from: second.object.data).contents["k"] == Data("second".utf8))
    }

    @Test("a store written with one key cannot be read with another")
    func wrongKeyFails() async throws {
        let fixture = try EncryptedFixture()
        defer { Task { await fixture.close() } }
        _ = try await fixture.registry.apply([try document("""
            {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"v"}}
            """)], namespace: "default")
        let other = Registry(store: fixture.store, secretsKey: SecretsKey.random(), logger: Logger(label: "test"))
        await #expect(throws: StoreError.self) { _ = try await other.get(.secret, namespace: "default", name: "a") }
        // The same key from the file reads it.
        let same = Registry(store: fixture.store, secretsKey: try SecretsKey.loadOrCreate(path: fixture.keyPath), logger: Logger(label: "test"))
        #expect(try await same.get(.secret, namespace: "default", name: "a")["data"]?["k"]?.stringValue == "dg==")
    }

    @Test("a deployment's template carries a digest of its config; changing a referenced ConfigMap rolls it, others do not")
    func configChangeRollsDeployment() async throws {
        let fixture = try EncryptedFixture()
        defer { Task { await fixture.close() } }
        let controller = DeploymentController(registry: fixture.registry, logger: Logger(label: "test"))
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        let registry = fixture.registry
        _ = try await registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true)))
        func configMap(_ name: String, _ value: String) throws -> JSONValue {
            try document(#"{"apiVersion":"weft/v1","kind":"ConfigMap","metadata":{"name":"\#(name)"},"data":{"greeting":"\#(value)"}}"#)
        }
        let deployment = try document("""
            {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"web"},
             "spec":{"replicas":2,"template":{"metadata":{"labels":{"app":"web"}},"spec":{"command":["weft-demo"],
               "env":[{"name":"GREETING","valueFrom":{"configMapKeyRef":{"name":"web-config","key":"greeting"}}}],
               "volumes":[{"name":"creds","secret":{"secretName":"db"}}]}}}}
            """)
        let secret = try document(#"{"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"\#(Self.password)"}}"#)
        let applied = try await registry.apply([try configMap("web-config", "hello"), secret, deployment], namespace: "default")
        #expect(applied.map(\.action) == ["created", "created", "created"])
        func replicas() async throws -> [Replica] {
            try await registry.typedList(Replica.self, namespace: "default").map(\.object).filter { !$0.isTerminating }
        }
        func current() async throws -> Deployment { try #require(try await registry.typed(Deployment.self, namespace: "default", name: "web")?.0) }
        try await eventually("2 replicas") { try await replicas().count == 2 }
        let first = try await current()
        let firstDigest = try #require(first.spec.template.metadata?.annotations?[ConfigRollout.hashAnnotation])
        #expect(first.metadata.generation == 1)
        let firstHash = TemplateHash.of(first.spec.template)
        #expect(try await replicas().allSatisfy { $0.spec.templateHash == firstHash })

        // Re-applying the same manifests changes nothing.
        let again = try await registry.apply([try configMap("web-config", "hello"), secret, deployment], namespace: "default")
        #expect(again.map(\.action) == ["unchanged", "unchanged", "unchanged"])

        // An unrelated ConfigMap does not roll it.
        _ = try await registry.apply([try configMap("other", "x")], namespace: "default")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await current().spec.template == first.spec.template)

        // The referenced one does, through the controller.
        _ = try await registry.apply([try configMap("web-config", "bonjour")], namespace: "default")
        try await eventually("a new config digest") {
            try await current().spec.template.metadata?.annotations?[ConfigRollout.hashAnnotation] != firstDigest
        }
        let rolled = try await current()
        #expect(rolled.metadata.generation == 2)
        let newHash = TemplateHash.of(rolled.spec.template)
        try await eventually("replicas of the new template") {
            let live = try await replicas()
            return live.count == 2 && live.allSatisfy { $0.spec.templateHash == newHash }
        }
        // Applying the unchanged deployment keeps the digest (no second rollout).
        let third = try await registry.apply([deployment], namespace: "default")
        #expect(third.map(\.action) == ["unchanged"])

        // A changed Secret rolls it too.
        let rolledDigest = rolled.spec.template.metadata?.annotations?[ConfigRollout.hashAnnotation]
        _ = try await registry.apply([try document(#"{"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"db"},"stringData":{"password":"new"}}"#)],
                                     namespace: "default")
        try await eventually("a new config digest after the secret changed") {
            let annotation = try await current().spec.template.metadata?.annotations?[ConfigRollout.hashAnnotation]
            return annotation != rolledDigest && annotation != firstDigest
        }

        // Opted out: the digest goes, and config changes no longer touch the template.
        var optedOut = deployment
        if case .object(var members) = optedOut, case .object(var metadata) = members["metadata"] ?? .null {
            metadata["annotations"] = .object([ConfigRollout.enabledAnnotation: .string("false")])
            members["metadata"] = .object(metadata)
            optedOut = .object(members)
        }
        _ = try await registry.apply([optedOut], namespace: "default")
        let quiet = try await current()
        #expect(quiet.spec.template.metadata?.annotations?[ConfigRollout.hashAnnotation] == nil)
        _ = try await registry.apply([try configMap("web-config", "hallo")], namespace: "default")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await current().spec.template == quiet.spec.template)
    }

    private func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
    }
}
