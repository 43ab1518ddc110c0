import Foundation
import Logging
import Testing
import WeftCore
import WeftStore
@testable import WeftControlPlane

/// A canary deployment of `cart` running `version`.
private func canaryDeployment(_ version: String, replicas: Int = 4, steps: String, analysis: String? = nil) throws -> JSONValue {
    let analysisMember = analysis.map { #","analysis":\#($0)"# } ?? ""
    return try JSONValue.parse(Data("""
        {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"cart"},
         "spec":{"replicas":\(replicas),"strategy":{"canary":{"steps":\(steps)\(analysisMember)}},
                 "template":{"metadata":{"labels":{"app":"cart"}},"spec":{"command":["weft-demo","\(version)"]}}}}
        """.utf8))
}

@Suite("Rollout controller", .serialized)
struct RolloutControllerTests {
    /// Runs the deployment and endpoints controllers, and an agent stand-in that reports every replica
    /// ready and removes stopped ones, while `body` runs.
    private func withControllers(_ body: @escaping (RegistryFixture) async throws -> Void) async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            _ = try await registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: NodeStatus(ready: true)))
            let deployments = Task { try await DeploymentController(registry: registry, logger: Logger(label: "test")).run() }
            let endpoints = Task { try await EndpointsController(registry: registry, logger: Logger(label: "test")).run() }
            let agent = Task {
                while !Task.isCancelled {
                    for (replica, _) in (try? await registry.typedList(Replica.self, namespace: "default")) ?? [] where !replica.spec.node.isEmpty {
                        if replica.isTerminating {
                            _ = try? await registry.delete(.replica, namespace: "default", name: replica.name, final: true)
                        } else if replica.status?.ready != true {
                            _ = try? await registry.updateReplicaStatus(namespace: "default", name: replica.name,
                                                                        status: ReplicaStatus(phase: .ready, ready: true, address: "127.0.0.1", ports: ["http": 9000]))
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            defer {
                deployments.cancel()
                endpoints.cancel()
                agent.cancel()
            }
            _ = try await registry.apply([RegistryFixture.service("cart")], namespace: "default")
            try await body(fixture)
        }
    }

    private func deployment(_ fixture: RegistryFixture) async throws -> Deployment? {
        try await fixture.registry.typed(Deployment.self, namespace: "default", name: "cart")?.0
    }

    private func rollout(_ fixture: RegistryFixture) async throws -> RolloutStatus? {
        try await deployment(fixture)?.status?.rollout
    }

    /// Live replicas per template hash.
    private func live(_ fixture: RegistryFixture) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for (replica, _) in try await fixture.registry.typedList(Replica.self, namespace: "default") where !replica.isTerminating {
            counts[replica.spec.templateHash, default: 0] += 1
        }
        return counts
    }

    private func split(_ fixture: RegistryFixture) async throws -> [TrafficWeight]? {
        try await fixture.registry.typed(Endpoints.self, namespace: "default", name: "cart")?.0.split
    }

    private func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    /// Applies v1 and waits until it is the Healthy stable version with every replica ready.
    private func stableV1(_ fixture: RegistryFixture, steps: String, analysis: String? = nil) async throws -> String {
        _ = try await fixture.registry.apply([try canaryDeployment("v1", steps: steps, analysis: analysis)], namespace: "default")
        try await eventually("v1 Healthy") { try await rollout(fixture)?.phase == .healthy }
        return try #require(try await rollout(fixture)?.stableRevision)
    }

    @Test("a canary walks its setWeight and pause steps, the split follows the weight, and promote makes it stable")
    func progresses() async throws {
        try await withControllers { fixture in
            let steps = #"[{"setWeight":25},{"pause":{"duration":"1s"}},{"setWeight":50},{"pause":{}},{"setWeight":100}]"#
            let v1 = try await stableV1(fixture, steps: steps)
            #expect(try await live(fixture) == [v1: 4])
            #expect(try await split(fixture) == nil)

            _ = try await fixture.registry.apply([try canaryDeployment("v2", steps: steps)], namespace: "default")
            try await eventually("a canary at 25%") { try await rollout(fixture)?.weight == 25 }
            let v2 = try #require(try await rollout(fixture)?.canaryRevision)
            #expect(v2 != v1)
            try await eventually("one canary replica beside four stable ones") { try await live(fixture) == [v1: 4, v2: 1] }
            try await eventually("the endpoints split 25/75") {
                try await split(fixture) == [TrafficWeight(revision: v2, weight: 25), TrafficWeight(revision: v1, weight: 75)]
            }

            // The 1 s pause ends by timer, then setWeight 50 and the untimed pause.
            try await eventually("paused at step 4 with the canary at 50%") {
                let rollout = try await rollout(fixture)
                return rollout?.phase == .paused && rollout?.currentStep == 3 && rollout?.weight == 50
            }
            #expect(try await live(fixture) == [v1: 4, v2: 2])
            try await eventually("the endpoints split 50/50") {
                try await split(fixture) == [TrafficWeight(revision: v2, weight: 50), TrafficWeight(revision: v1, weight: 50)]
            }

            _ = try await fixture.registry.rollout(namespace: "default", name: "cart", action: .promote(full: false))
            try await eventually("promoted") { try await rollout(fixture)?.stableRevision == v2 }
            #expect(try await rollout(fixture)?.phase == .healthy)
            try await eventually("only v2 replicas, no split") {
                let split = try await split(fixture)
                return try await live(fixture) == [v2: 4] && split == nil
            }
            let deployment = try #require(try await deployment(fixture))
            let reasons = deployment.status?.events?.map(\.reason) ?? []
            #expect(reasons.filter { $0 != "RolloutCompleted" } == ["CanaryStarted", "StepAdvanced", "StepAdvanced", "StepAdvanced",
                                                                  "PromoteRequested", "StepAdvanced", "StepAdvanced", "Promoted"])
            #expect(deployment.status?.history?.map(\.revision) == [1, 2])
            try await eventually("status counts kept beside the rollout") {
                let status = try await self.deployment(fixture)?.status
                return status?.replicas == 4 && status?.readyReplicas == 4 && status?.rollout?.phase == .healthy
            }
        }
    }

    @Test("a canary answering half its requests with 5xx is aborted within interval × failureLimit: its replicas go, the stable ones stay")
    func analysisAborts() async throws {
        try await withControllers { fixture in
            let steps = #"[{"setWeight":50},{"pause":{}}]"#
            let analysis = #"{"successRate":0.99,"interval":"1s","failureLimit":2,"minRequests":10}"#
            let v1 = try await stableV1(fixture, steps: steps, analysis: analysis)
            let stableNames = Set(try await fixture.registry.typedList(Replica.self, namespace: "default").map(\.object.name))

            _ = try await fixture.registry.apply([try canaryDeployment("v2", steps: steps, analysis: analysis)], namespace: "default")
            try await eventually("the canary paused at 50%") { try await rollout(fixture)?.phase == .paused }
            let v2 = try #require(try await rollout(fixture)?.canaryRevision)

            // The node's proxy reports cumulative counters with each heartbeat, as the agent would.
            let registry = fixture.registry
            let traffic = Task {
                var tick = 0
                while !Task.isCancelled {
                    tick += 1
                    var status = NodeStatus(ready: true)
                    status.traffic = [
                        TrafficSample(service: "default/cart", port: 80, revision: v1, requests: 40 * tick, responses: [0, 40 * tick, 0, 0, 0]),
                        TrafficSample(service: "default/cart", port: 80, revision: v2, requests: 40 * tick, responses: [0, 20 * tick, 0, 0, 20 * tick]),
                    ]
                    _ = try? await registry.putNode(Node(metadata: ObjectMeta(name: "n1"), status: status))
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            defer { traffic.cancel() }

            let started = ContinuousClock.now
            try await eventually("Degraded") { try await rollout(fixture)?.phase == .degraded }
            // One interval to open the window after the weight is set, then failureLimit failed ones.
            #expect(ContinuousClock.now - started < .seconds(4))
            let aborted = try #require(try await rollout(fixture))
            #expect(aborted.canaryRevision == nil)
            #expect(aborted.weight == 0)
            #expect(aborted.abortedRevision == v2)
            #expect(aborted.stableRevision == v1)
            #expect(aborted.failures == 2)
            #expect(aborted.message?.hasPrefix("analysis failed 2 times: success rate 0.5 < 0.99 over ") == true, "\(aborted.message ?? "")")
            #expect(aborted.lastAnalysis?.versions.first { $0.role == "stable" }?.successRate == 1)
            try await eventually("canary replicas gone, the split with them") {
                let split = try await split(fixture)
                return try await live(fixture) == [v1: 4] && split == nil
            }
            let stableNow = Set(try await fixture.registry.typedList(Replica.self, namespace: "default").map(\.object).filter { !$0.isTerminating }.map(\.name))
            #expect(stableNow == stableNames, "the stable replicas are untouched")
            let events = try await deployment(fixture)?.status?.events ?? []
            #expect(events.filter { $0.reason == "AnalysisFailed" }.count == 2)
            #expect(events.last?.reason == "Aborted")
            #expect(events.last?.type == "Warning")

            // The aborted template stays aborted; undo returns to v1 and Healthy.
            await #expect(throws: APIFailure.self) {
                _ = try await fixture.registry.rollout(namespace: "default", name: "cart", action: .promote(full: false))
            }
            _ = try await fixture.registry.rollout(namespace: "default", name: "cart", action: .undo(toRevision: nil))
            try await eventually("Healthy on v1 again") {
                let rollout = try await self.rollout(fixture)
                return rollout?.phase == .healthy && rollout?.stableRevision == v1
            }
        }
    }

    @Test("a rolling update is recorded in status.rollout, events and history beside the replica counts")
    func rollingUpdateIsRecorded() async throws {
        try await withControllers { fixture in
            _ = try await fixture.registry.apply([RegistryFixture.deployment("cart", replicas: 2)], namespace: "default")
            try await eventually("v1 Healthy") { try await rollout(fixture)?.phase == .healthy }
            let v1 = try #require(try await rollout(fixture)?.stableRevision)
            _ = try await fixture.registry.apply([RegistryFixture.deployment("cart", replicas: 2, command: "other")], namespace: "default")
            try await eventually("the new template stable and Healthy") {
                let rollout = try await rollout(fixture)
                return rollout?.stableRevision != v1 && rollout?.phase == .healthy
            }
            let deployment = try #require(try await deployment(fixture))
            #expect(deployment.status?.events?.map(\.reason) == ["RolloutCompleted", "RolloutStarted", "RolloutCompleted"])
            #expect(deployment.status?.history?.map(\.revision) == [1, 2])
            #expect(deployment.status?.rollout?.canaryRevision == nil)
            try await eventually("2 ready replicas counted") {
                let status = try await self.deployment(fixture)?.status
                return status?.readyReplicas == 2 && status?.updatedReplicas == 2 && status?.rollout?.phase == .healthy
            }
        }
    }

    @Test("rollout actions: 404 for an unknown deployment, 409 saying why, 422 for a bad body; admin only")
    func actionErrors() async throws {
        try await withControllers { fixture in
            let registry = fixture.registry
            func failure(_ body: () async throws -> Void) async -> APIFailure? {
                do {
                    try await body()
                    return nil
                } catch {
                    return error as? APIFailure
                }
            }
            let missing = await failure { _ = try await registry.rollout(namespace: "default", name: "nope", action: .abort) }
            #expect(missing?.code == 404)

            _ = try await stableV1(fixture, steps: #"[{"setWeight":10},{"pause":{}}]"#)
            let idle = await failure { _ = try await registry.rollout(namespace: "default", name: "cart", action: .promote(full: true)) }
            #expect(idle?.code == 409)
            #expect(idle?.message.hasPrefix("deployment default/cart has no canary in progress; nothing to promote") == true)
            let resume = await failure { _ = try await registry.rollout(namespace: "default", name: "cart", action: .resume) }
            #expect(resume?.code == 409)

            _ = try await registry.apply([try canaryDeployment("v2", steps: #"[{"setWeight":10},{"pause":{}}]"#)], namespace: "default")
            try await eventually("the canary paused") { try await rollout(fixture)?.phase == .paused }
            let paused = try await registry.rollout(namespace: "default", name: "cart", action: .pause)
            guard case .object(let members) = paused, case .object(let status) = members["status"] ?? .null,
                  case .object(let rollout) = status["rollout"] ?? .null else {
                Issue.record("the answer is not the deployment: \(paused)")
                return
            }
            #expect(rollout["paused"] == .bool(true))
            _ = try await registry.rollout(namespace: "default", name: "cart", action: .abort)
            try await eventually("aborted by hand") { try await self.rollout(fixture)?.message == "aborted by hand (weft rollout abort)" }

            let unknown = await failure { _ = try RolloutRoutes.action(from: Data(#"{"action":"restart"}"#.utf8)) }
            #expect(unknown?.code == 422)
            #expect(unknown?.message == "action: unknown action \"restart\"; valid actions: promote, abort, pause, resume, undo")
            let noAction = await failure { _ = try RolloutRoutes.action(from: Data(#"{"full":true}"#.utf8)) }
            #expect(noAction?.code == 422)
            #expect(noAction?.message.contains("action") == true, "\(String(describing: noAction?.message))")
            let badType = await failure { _ = try RolloutRoutes.action(from: Data(#"{"action":"undo","toRevision":"two"}"#.utf8)) }
            #expect(badType?.code == 422)
            #expect(try RolloutRoutes.action(from: Data(#"{"action":"undo","toRevision":1}"#.utf8)) == .undo(toRevision: 1))

            let path = "namespaces/default/deployments/cart/rollout".split(separator: "/")
            #expect(AccessPolicy.decide(.admin, method: "POST", path: path) == .allow)
            guard case .deny(let code, _) = AccessPolicy.decide(.node("n1"), method: "POST", path: path) else {
                Issue.record("a node may call the rollout route")
                return
            }
            #expect(code == 403)
        }
    }
}
