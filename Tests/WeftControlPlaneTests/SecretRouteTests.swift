import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import ServiceLifecycle
import Testing
import WeftCore
import WeftPKI
import WeftStore
@testable import WeftControlPlane

@Suite("Secret routes")
struct SecretRouteTests {
    static let token = "test-admin-token-0123456789abcdef"

    /// The API over plain HTTP on loopback with node enrollment, and the credential of joined node `n1`.
    private func withServer(_ body: @escaping (RegistryFixture, URL, String) async throws -> Void) async throws {
        try await withRegistry { fixture in
            let authority = try CertificateAuthority.create()
            let signer = CertificateSigner(authority: authority, trustDomain: "weft.internal", validity: 3600)
            let enrollment = try NodeEnrollment(registry: fixture.registry, signer: signer, clusterAuthority: authority)
            let joinToken = try JoinToken(parsing: try #require(try await enrollment.createToken(JoinTokenRequest(ttlSeconds: 3600)).token))
            let csr = try IdentityRequest(identity: try SPIFFEID.node("n1", trustDomain: "weft.internal")).csrPEM()
            let credential = try await enrollment.join(JoinRequest(nodeName: "n1", csr: csr), tokenID: joinToken.id).credential

            let configuration = APIServerConfiguration(host: "127.0.0.1", port: 0, certificatePath: "", keyPath: "", token: Self.token)
            let router = APIServer.makeRouter(configuration: configuration, registry: fixture.registry, logs: nil, signer: signer,
                                              enrollment: enrollment, logger: Logger(label: "test"))
            let (ports, sink) = AsyncStream.makeStream(of: Int.self)
            let app = Application(router: router, server: .http1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in
                                      if let port = channel.localAddress?.port { sink.yield(port) }
                                  }, logger: Logger(label: "test"))
            let group = ServiceGroup(services: [app], logger: Logger(label: "test"))
            let server = Task {
                defer { sink.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await body(fixture, URL(string: "http://127.0.0.1:\(port)/api/v1/")!, credential)
            } catch {
                await group.triggerGracefulShutdown()
                _ = await server.result
                throw error
            }
            await group.triggerGracefulShutdown()
            try await server.value
        }
    }

    private func get(_ base: URL, _ path: String, token: String) async throws -> Int {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test("a node reads a Secret only when one of its replicas uses it, and never lists Secrets; the admin reads all")
    func nodeAccess() async throws {
        try await withServer { fixture, base, node in
            for name in ["db", "other"] {
                _ = try await fixture.registry.apply([try JSONValue.parse(Data("""
                    {"apiVersion":"weft/v1","kind":"Secret","metadata":{"name":"\(name)"},"stringData":{"k":"v"}}
                    """.utf8))], namespace: "default")
            }
            let workload = WorkloadSpec(command: ["weft-demo"], volumes: [Volume(name: "creds", secret: SecretVolumeSource(secretName: "db"))])
            for (name, boundTo, template) in [("mine", "n1", workload), ("elsewhere", "n2", WorkloadSpec(
                command: ["weft-demo"], env: [EnvVar(name: "K", value: nil, valueFrom: EnvVarSource(secretKeyRef: KeySelector(name: "other", key: "k")))]))] {
                let replica = Replica(metadata: ObjectMeta(name: name, namespace: "default"),
                                      spec: ReplicaSpec(deployment: "web", node: boundTo, templateHash: "h", template: template))
                try await fixture.registry.store.commit([.create(ResourceCodec.key(of: replica), try ResourceCodec.encode(replica))])
            }
            #expect(try await get(base, "namespaces/default/secrets/db", token: node) == 200)
            #expect(try await get(base, "namespaces/default/secrets/other", token: node) == 403)
            #expect(try await get(base, "namespaces/default/secrets/missing", token: node) == 403)
            #expect(try await get(base, "namespaces/default/secrets", token: node) == 403)
            #expect(try await get(base, "secrets", token: node) == 403)
            #expect(try await get(base, "namespaces/default/configmaps", token: node) == 200)
            #expect(try await get(base, "namespaces/default/secrets/other", token: Self.token) == 200)
            #expect(try await get(base, "secrets", token: Self.token) == 200)
        }
    }
}
