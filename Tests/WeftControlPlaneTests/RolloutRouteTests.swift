import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
import WeftCore
import WeftStore
@testable import WeftControlPlane

@Suite("Rollout route")
struct RolloutRouteTests {
    static let token = "test-admin-token-0123456789abcdef"

    /// Serves the API's routes over plain HTTP on a loopback port while `body` runs.
    private func withServer(_ body: @escaping (RegistryFixture, URL) async throws -> Void) async throws {
        try await withRegistry { fixture in
            let configuration = APIServerConfiguration(host: "127.0.0.1", port: 0, certificatePath: "", keyPath: "", token: Self.token)
            let router = APIServer.makeRouter(configuration: configuration, registry: fixture.registry, logs: nil, signer: nil, enrollment: nil,
                                              logger: Logger(label: "test"))
            let (ports, sink) = AsyncStream.makeStream(of: Int.self)
            let app = Application(router: router, server: .http1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in
                                      if let port = channel.localAddress?.port { sink.yield(port) }
                                  }, logger: Logger(label: "test"))
            let group = ServiceGroup(services: [app], logger: Logger(label: "test"))
            let server = Task {
                // A server that fails to start ends the port stream, so the wait below ends too.
                defer { sink.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            do {
                try await body(fixture, URL(string: "http://127.0.0.1:\(port)/api/v1/")!)
            } catch {
                await group.triggerGracefulShutdown()
                _ = await server.result
                throw error
            }
            await group.triggerGracefulShutdown()
            try await server.value
        }
    }

    /// POSTs `json` to `path`: the status code and the answer's JSON.
    private func post(_ base: URL, _ path: String, _ json: String, token: String = RolloutRouteTests.token) async throws -> (Int, JSONValue) {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(json.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, try JSONValue.parse(data))
    }

    private func message(_ answer: JSONValue) -> String? {
        guard case .object(let members) = answer, case .object(let error) = members["error"] ?? .null, case .string(let text) = error["message"] ?? .null else {
            return nil
        }
        return text
    }

    @Test("POST .../rollout: 200 with the deployment, 404 unknown deployment, 409 with the reason, 422 for a bad body, 401 without the admin token")
    func route() async throws {
        try await withServer { fixture, base in
            let path = "namespaces/default/deployments/cart/rollout"
            let (missing, missingAnswer) = try await post(base, path, #"{"action":"abort"}"#)
            #expect(missing == 404)
            #expect(message(missingAnswer) == "deployment \"cart\" not found in namespace \"default\"")

            _ = try await fixture.registry.apply([RegistryFixture.deployment("cart")], namespace: "default")
            let (idle, idleAnswer) = try await post(base, path, #"{"action":"promote","full":true}"#)
            #expect(idle == 409)
            #expect(message(idleAnswer)?.hasPrefix("deployment default/cart has no canary in progress; nothing to promote") == true)
            let (noHistory, _) = try await post(base, path, #"{"action":"undo"}"#)
            #expect(noHistory == 409)

            let (unknown, unknownAnswer) = try await post(base, path, #"{"action":"restart"}"#)
            #expect(unknown == 422)
            #expect(message(unknownAnswer) == "action: unknown action \"restart\"; valid actions: promote, abort, pause, resume, undo")
            let (notJSON, _) = try await post(base, path, "promote")
            #expect(notJSON == 422)
            let (unauthenticated, _) = try await post(base, path, #"{"action":"pause"}"#, token: "wrong")
            #expect(unauthenticated == 401)

            // A canary in progress, as the controller records it: pause answers with the deployment.
            let v1 = ReplicaTemplate(metadata: TemplateMetadata(labels: ["app": "cart"]), spec: WorkloadSpec(command: ["weft-demo"]))
            try await fixture.registry.update(Deployment.self, namespace: "default", name: "cart") { deployment in
                deployment.status = DeploymentStatus(rollout: RolloutStatus(phase: .progressing, stableRevision: "stable0001", canaryRevision: "canary0001",
                                                                            currentStep: 0, weight: 10),
                                                     history: [RevisionRecord(revision: 1, hash: TemplateHash.of(v1), template: v1, createdAt: "t")])
                return true
            }
            let (paused, pausedAnswer) = try await post(base, path, #"{"action":"pause"}"#)
            #expect(paused == 200)
            guard case .object(let members) = pausedAnswer, case .object(let status) = members["status"] ?? .null,
                  case .object(let rollout) = status["rollout"] ?? .null, case .object(let metadata) = members["metadata"] ?? .null else {
                Issue.record("not a deployment: \(pausedAnswer)")
                return
            }
            #expect(members["kind"] == .string("Deployment"))
            #expect(rollout["paused"] == .bool(true))
            #expect(metadata["resourceVersion"] != nil)
            let (resumed, _) = try await post(base, path, #"{"action":"resume"}"#)
            #expect(resumed == 200)
            let (resumedTwice, resumedAnswer) = try await post(base, path, #"{"action":"resume"}"#)
            #expect(resumedTwice == 409)
            #expect(message(resumedAnswer)?.contains("is not paused; nothing to resume") == true)
            let stored = try await fixture.registry.typed(Deployment.self, namespace: "default", name: "cart")?.0
            #expect(stored?.status?.events?.map(\.reason) == ["PauseRequested", "ResumeRequested"])
        }
    }
}
