import Foundation
import Testing
@testable import WeftCore

private typealias View = DeploymentPlan.ReplicaView

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

private func template(_ version: String) -> ReplicaTemplate {
    ReplicaTemplate(metadata: TemplateMetadata(labels: ["app": "cart"]), spec: WorkloadSpec(command: ["cart", version]))
}

private func cart(_ version: String = "v1", replicas: Int = 4, steps: [CanaryStep]? = nil, analysis: CanaryAnalysis? = nil) -> Deployment {
    let strategy = steps.map { DeploymentStrategy(canary: CanaryStrategy(steps: $0, analysis: analysis)) }
    return Deployment(metadata: ObjectMeta(name: "cart", namespace: "default"),
                      spec: DeploymentSpec(replicas: replicas, template: template(version), strategy: strategy))
}

private func hash(_ version: String) -> String { TemplateHash.of(template(version)) }

private func replicas(_ version: String, _ count: Int, ready: Bool = true) -> [View] {
    (0..<count).map { View(name: "cart-\(version)-\($0)", templateHash: hash(version), ready: ready, terminating: false, createdRevision: Int64($0)) }
}

/// Drives one deployment through decisions as the controller would: each decision is recorded in status.
private struct Driver {
    var deployment: Deployment
    var now = t0
    var last: RolloutDecision?

    init(_ deployment: Deployment) { self.deployment = deployment }

    var rollout: RolloutStatus? { deployment.status?.rollout }
    var reasons: [String] { deployment.status?.events?.map(\.reason) ?? [] }

    @discardableResult
    mutating func step(_ replicas: [View], analysis: AnalysisRun? = nil, after seconds: TimeInterval = 0) -> RolloutDecision {
        now = now.addingTimeInterval(seconds)
        let decision = RolloutProgress.decide(.init(deployment: deployment, templateHash: TemplateHash.of(deployment.spec.template),
                                                    replicas: replicas, now: now, analysis: analysis))
        deployment.status = decision.applied(to: deployment.status ?? DeploymentStatus())
        last = decision
        return decision
    }

    mutating func act(_ action: RolloutAction) throws {
        try action.apply(to: &deployment, now: now)
    }

    mutating func apply(_ version: String) {
        deployment.spec.template = template(version)
    }
}

private func failed(_ reason: String = "success rate 0.5 < 0.99 over 1s (40 requests)") -> AnalysisRun {
    AnalysisRun(at: "t", outcome: .failed, reason: reason, versions: [])
}

private func sample(_ revision: String, requests: Int, errors: Int = 0, failures: Int = 0, latencyMs: UInt64 = 10, service: String = "default/cart") -> TrafficSample {
    var histogram = LatencySummary.makeHistogram()
    _ = histogram.record(latencyMs * 1000, count: UInt64(requests - failures))
    return TrafficSample(service: service, port: 80, revision: revision, requests: requests,
                         responses: [0, requests - errors - failures, 0, 0, errors], failures: failures, latency: LatencySummary(histogram))
}

@Suite("Canary traffic aggregation and analysis")
struct CanaryMetricsTests {
    @Test("an interval is the current sums minus those at its start, node by node; a counter that went down counts from zero")
    func intervalDifferencesPerNode() {
        let services: Set = ["default/cart"]
        let start = TrafficSnapshot(reports: [("n1", [sample("c", requests: 100, errors: 10)]), ("n2", [sample("c", requests: 50)])], services: services)
        let end = TrafficSnapshot(reports: [
            ("n1", [sample("c", requests: 160, errors: 40), sample("s", requests: 10), sample("c", requests: 99, service: "default/other")]),
            ("n2", [sample("c", requests: 20, errors: 5)]),   // restarted proxy: 20 < 50
            ("n3", [sample("c", requests: 10)]),              // new node: counts whole
        ], services: services)
        let traffic = end.since(start)
        let canary = traffic.values.filter { $0.revision == "c" }
        #expect(canary.count == 1)
        #expect(canary.first?.requests == 60 + 20 + 10)
        #expect(canary.first?.serverErrors == 30 + 5)
        #expect(traffic.keys.allSatisfy { $0.hasPrefix("default/cart:80@") }, "other services are left out")

        let metrics = VersionMetrics.measure(revision: "c", role: "canary", in: traffic)
        #expect(metrics.requests == 90)
        #expect(abs((metrics.successRate ?? 0) - 55.0 / 90.0) < 1e-9)
        #expect(metrics.p99Ms.map { abs($0 - 10) < 0.2 } == true)
        #expect(VersionMetrics.measure(revision: "none", role: "stable", in: traffic) == VersionMetrics(revision: "none", role: "stable", requests: 0))
    }

    @Test("failed requests count against the success rate")
    func failuresCount() {
        let traffic = ["k": sample("c", requests: 100, failures: 20)]
        let metrics = VersionMetrics.measure(revision: "c", role: "canary", in: traffic)
        #expect(metrics.requests == 100)
        #expect(metrics.successRate == 0.8)
    }

    @Test("an interval passes, fails naming the figure and threshold, or is inconclusive below minRequests")
    func judge() {
        let analysis = CanaryAnalysis(successRate: 0.99, p99LatencyMs: 300, interval: "10s", minRequests: 20)
        let stable = VersionMetrics(revision: "s", role: "stable", requests: 500, successRate: 1, p99Ms: 12)
        func run(_ requests: Int, _ rate: Double, _ p99: Double) -> AnalysisRun {
            analysis.judge(canary: VersionMetrics(revision: "c", role: "canary", requests: requests, successRate: rate, p99Ms: p99),
                           stable: stable, interval: .seconds(10), at: "2026-11-23T22:00:00Z")
        }
        #expect(run(212, 0.995, 100).outcome == .passed)
        let lowRate = run(212, 0.51, 100)
        #expect(lowRate.outcome == .failed)
        #expect(lowRate.reason == "success rate 0.51 < 0.99 over 10.0s (212 requests)")
        #expect(lowRate.versions.map(\.role) == ["stable", "canary"])
        let slow = run(212, 1, 312.5)
        #expect(slow.outcome == .failed)
        #expect(slow.reason == "p99 latency 312.5ms > 300ms over 10.0s (212 requests)")
        let few = run(3, 0, 900)
        #expect(few.outcome == .inconclusive)
        #expect(few.reason == "canary served 3 requests over 10.0s, fewer than minRequests 20")
    }
}

@Suite("Rollout state machine")
struct RolloutProgressTests {
    static let steps = [CanaryStep(setWeight: 25), CanaryStep(pause: CanaryPause(duration: "30s")), CanaryStep(setWeight: 50),
                        CanaryStep(pause: CanaryPause()), CanaryStep(setWeight: 100)]

    /// A canary deployment whose first template (v1) is stable and whose template is now v2.
    private func startedCanary(analysis: CanaryAnalysis? = nil) -> Driver {
        var driver = Driver(cart(steps: Self.steps, analysis: analysis))
        driver.step(replicas("v1", 4))
        driver.apply("v2")
        driver.step(replicas("v1", 4))
        return driver
    }

    @Test("the first template is stable without a canary, and Healthy once its replicas are ready")
    func firstTemplate() {
        var driver = Driver(cart(steps: Self.steps))
        driver.step(replicas("v1", 4, ready: false))
        #expect(driver.rollout?.phase == .progressing)
        #expect(driver.rollout?.stableRevision == hash("v1"))
        #expect(driver.rollout?.canaryRevision == nil)
        #expect(driver.deployment.status?.history?.map(\.revision) == [1])
        driver.step(replicas("v1", 4))
        #expect(driver.rollout?.phase == .healthy)
        #expect(driver.reasons == ["RolloutCompleted"])
    }

    @Test("a canary walks setWeight (waiting for its replicas), a timed pause, an untimed pause and promote, then is promoted")
    func walksTheSteps() throws {
        var driver = startedCanary()
        #expect(driver.rollout?.canaryRevision == hash("v2"))
        #expect(driver.rollout?.weight == 25)
        #expect(driver.rollout?.currentStep == 0)
        #expect(driver.rollout?.message == "step 1/5: 0/1 canary replicas ready for weight 25%")
        #expect(driver.last?.outcome == .started)
        #expect(driver.deployment.status?.history?.map(\.hash) == [hash("v1"), hash("v2")])

        // One canary replica (25% of 4) ready: the timed pause begins.
        let decision = driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        #expect(driver.rollout?.currentStep == 1)
        #expect(decision.wakeAt == driver.now.addingTimeInterval(30))
        #expect(driver.rollout?.phase == .progressing)
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 29)
        #expect(driver.rollout?.currentStep == 1, "29 s into a 30 s pause")
        // Pause over: setWeight 50 needs 2 ready canary replicas.
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        #expect(driver.rollout?.currentStep == 2)
        #expect(driver.rollout?.weight == 50)
        driver.step(replicas("v1", 4) + replicas("v2", 2), after: 1)
        #expect(driver.rollout?.currentStep == 3)
        #expect(driver.rollout?.phase == .paused)
        #expect(driver.rollout?.message == "step 4/5: paused until `weft rollout promote`")

        try driver.act(.promote(full: false))
        driver.step(replicas("v1", 4) + replicas("v2", 2), after: 1)
        #expect(driver.rollout?.currentStep == 4)
        #expect(driver.rollout?.weight == 100)
        #expect(driver.rollout?.promote == nil)
        driver.step(replicas("v1", 4) + replicas("v2", 4), after: 1)
        #expect(driver.last?.outcome == .promoted)
        #expect(driver.rollout?.phase == .healthy)
        #expect(driver.rollout?.stableRevision == hash("v2"))
        #expect(driver.rollout?.canaryRevision == nil)
        #expect(driver.rollout?.weight == 0)
        #expect(driver.rollout?.currentStep == 5, "every step done")
        #expect(driver.reasons == ["RolloutCompleted", "CanaryStarted", "StepAdvanced", "StepAdvanced", "StepAdvanced",
                                   "PromoteRequested", "StepAdvanced", "StepAdvanced", "Promoted"])
    }

    @Test("promote full skips the remaining steps")
    func promoteFull() throws {
        var driver = startedCanary()
        try driver.act(.promote(full: true))
        driver.step(replicas("v1", 4))
        #expect(driver.last?.outcome == .promoted)
        #expect(driver.rollout?.stableRevision == hash("v2"))
        #expect(driver.deployment.status?.events?.last?.message.contains("skipping 5 remaining steps") == true)
    }

    @Test("pause by hand blocks advancing until resume")
    func pauseAndResume() throws {
        var driver = startedCanary()
        try driver.act(.pause)
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        #expect(driver.rollout?.currentStep == 0)
        #expect(driver.rollout?.phase == .paused)
        try driver.act(.resume)
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        #expect(driver.rollout?.currentStep == 1)
        #expect(driver.rollout?.phase == .progressing)
    }

    @Test("failed intervals up to failureLimit abort: weight 0, Degraded with the reason, and the same template stays aborted")
    func analysisAborts() throws {
        var driver = startedCanary(analysis: CanaryAnalysis(successRate: 0.99, interval: "1s", failureLimit: 2))
        let running = replicas("v1", 4) + replicas("v2", 1)
        driver.step(running, analysis: AnalysisRun(at: "t", outcome: .passed, versions: []), after: 1)
        driver.step(running, analysis: failed(), after: 1)
        #expect(driver.rollout?.failures == 1)
        #expect(driver.rollout?.canaryRevision == hash("v2"))
        driver.step(running, analysis: failed(), after: 1)
        #expect(driver.last?.outcome == .aborted)
        #expect(driver.rollout?.phase == .degraded)
        #expect(driver.rollout?.weight == 0)
        #expect(driver.rollout?.canaryRevision == nil)
        #expect(driver.rollout?.abortedRevision == hash("v2"))
        #expect(driver.rollout?.stableRevision == hash("v1"))
        #expect(driver.rollout?.message == "analysis failed 2 times: success rate 0.5 < 0.99 over 1s (40 requests)")
        #expect(driver.deployment.status?.events?.last?.type == "Warning")

        driver.step(replicas("v1", 4), after: 60)
        #expect(driver.rollout?.phase == .degraded, "no new canary for the aborted template")
        #expect(driver.rollout?.canaryRevision == nil)
        #expect(throws: RolloutActionError.self) { try driver.act(.promote(full: false)) }

        // undo: back to v1, Healthy again; a new template then starts a new canary.
        try driver.act(.undo(toRevision: nil))
        #expect(driver.deployment.spec.template == template("v1"))
        driver.step(replicas("v1", 4), after: 1)
        #expect(driver.rollout?.phase == .healthy)
        #expect(driver.deployment.status?.history?.map(\.revision) == [2, 3], "v1 moves to the newest revision number")
        driver.apply("v3")
        driver.step(replicas("v1", 4), after: 1)
        #expect(driver.rollout?.canaryRevision == hash("v3"))
        #expect(driver.rollout?.failures == 0)
    }

    @Test("abort by hand")
    func abortByHand() throws {
        var driver = startedCanary()
        try driver.act(.abort)
        driver.step(replicas("v1", 4) + replicas("v2", 1))
        #expect(driver.last?.outcome == .aborted)
        #expect(driver.rollout?.message == "aborted by hand (weft rollout abort)")
        #expect(driver.rollout?.abortRequested == nil)
    }

    @Test("going back to the stable template cancels the canary")
    func backToStable() {
        var driver = startedCanary()
        driver.apply("v1")
        driver.step(replicas("v1", 4) + replicas("v2", 1))
        #expect(driver.rollout?.canaryRevision == nil)
        #expect(driver.rollout?.phase == .progressing)
        #expect(driver.reasons.last == "CanaryCancelled")
    }

    @Test("a newer template replaces a running canary and starts at step 0")
    func newerTemplate() {
        var driver = startedCanary()
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        driver.apply("v3")
        driver.step(replicas("v1", 4) + replicas("v2", 1), after: 1)
        #expect(driver.rollout?.canaryRevision == hash("v3"))
        #expect(driver.rollout?.currentStep == 0)
        #expect(driver.rollout?.stableRevision == hash("v1"))
    }

    @Test("a rolling update is recorded: RolloutStarted, Progressing while old replicas exist, then RolloutCompleted")
    func rollingUpdate() {
        var driver = Driver(cart())
        driver.step(replicas("v1", 4))
        driver.apply("v2")
        driver.step(replicas("v1", 4))
        #expect(driver.rollout?.phase == .progressing)
        #expect(driver.rollout?.stableRevision == hash("v2"))
        driver.step(replicas("v1", 1) + replicas("v2", 4))
        #expect(driver.rollout?.phase == .progressing)
        driver.step(replicas("v2", 4))
        #expect(driver.rollout?.phase == .healthy)
        #expect(driver.reasons == ["RolloutCompleted", "RolloutStarted", "RolloutCompleted"])
    }

    @Test("canary replicas: the weight's share of the desired count, rounded up, at least one above 0")
    func canaryReplicaCounts() {
        #expect(RolloutProgress.canaryReplicas(desired: 4, weight: 0) == 0)
        #expect(RolloutProgress.canaryReplicas(desired: 4, weight: 1) == 1)
        #expect(RolloutProgress.canaryReplicas(desired: 4, weight: 25) == 1)
        #expect(RolloutProgress.canaryReplicas(desired: 4, weight: 26) == 2)
        #expect(RolloutProgress.canaryReplicas(desired: 10, weight: 100) == 10)
        #expect(RolloutProgress.canaryReplicas(desired: 0, weight: 50) == 0)
    }

    @Test("events keep the newest 50")
    func eventLimit() {
        let old = (0..<49).map { RolloutEvent(time: "t", reason: "Old\($0)", message: "") }
        let all = RolloutEvent.appending([RolloutEvent(time: "t", reason: "A", message: ""), RolloutEvent(time: "t", reason: "B", message: "")], to: old)
        #expect(all?.count == 50)
        #expect(all?.first?.reason == "Old1")
        #expect(all?.last?.reason == "B")
    }
}

@Suite("Revision history")
struct RevisionHistoryTests {
    @Test("new templates get increasing numbers; an old one moves to the newest; the oldest beyond 10 go, except the stable one")
    func recording() {
        var history: [RevisionRecord] = []
        for version in 1...3 { history = RevisionRecord.recording(hash("v\(version)"), template: template("v\(version)"), in: history, at: "t") }
        #expect(history.map(\.revision) == [1, 2, 3])
        history = RevisionRecord.recording(hash("v3"), template: template("v3"), in: history, at: "t")
        #expect(history.map(\.revision) == [1, 2, 3], "the current template again changes nothing")
        history = RevisionRecord.recording(hash("v1"), template: template("v1"), in: history, at: "later")
        #expect(history.map(\.revision) == [2, 3, 4])
        #expect(history.last?.hash == hash("v1"))
        #expect(history.last?.createdAt == "t", "first applied")
        for version in 10...20 {
            history = RevisionRecord.recording(hash("v\(version)"), template: template("v\(version)"), in: history, at: "t", keeping: [hash("v1")])
        }
        #expect(history.count == RevisionRecord.limit)
        #expect(history.first?.hash == hash("v1"), "the stable template is kept")
        #expect(history.last?.revision == 15)
    }
}

@Suite("Canary replica plan")
struct CanaryPlanTests {
    @Test("stable keeps its full count, the canary gets its share, a third template goes")
    func counts() {
        let third = View(name: "cart-old-0", templateHash: "old", ready: true, terminating: false, createdRevision: 1)
        let plan = DeploymentPlan.canaryPlan(desired: 4, stable: hash("v1"), canary: hash("v2"), canaryReplicas: 2, generation: 3,
                                             replicas: replicas("v1", 3) + replicas("v2", 3) + [third])
        #expect(plan.createStable == 1)
        #expect(plan.create == 0)
        #expect(Set(plan.delete) == ["cart-old-0", "cart-v2-2"])
        #expect(plan.status.updatedReplicas == 3)
        #expect(plan.status.observedGeneration == 3)
    }

    @Test("after an abort every canary replica goes")
    func aborted() {
        let plan = DeploymentPlan.canaryPlan(desired: 4, stable: hash("v1"), canary: nil, canaryReplicas: 0, generation: 1,
                                             replicas: replicas("v1", 4) + replicas("v2", 2))
        #expect(plan.create == 0 && plan.createStable == 0)
        #expect(Set(plan.delete) == ["cart-v2-0", "cart-v2-1"])
    }

    @Test("a growing weight creates canary replicas")
    func grows() {
        let plan = DeploymentPlan.canaryPlan(desired: 4, stable: hash("v1"), canary: hash("v2"), canaryReplicas: 4, generation: 1,
                                             replicas: replicas("v1", 4) + replicas("v2", 1))
        #expect(plan.create == 3)
        #expect(plan.createStable == 0)
        #expect(plan.delete.isEmpty)
    }
}

@Suite("Rollout actions")
struct RolloutActionTests {
    private func running() -> Deployment {
        var deployment = cart("v2", steps: RolloutProgressTests.steps)
        deployment.status = DeploymentStatus(rollout: RolloutStatus(phase: .progressing, stableRevision: hash("v1"), canaryRevision: hash("v2"), currentStep: 0, weight: 25),
                                             history: [RevisionRecord(revision: 1, hash: hash("v1"), template: template("v1"), createdAt: "t"),
                                                       RevisionRecord(revision: 2, hash: hash("v2"), template: template("v2"), createdAt: "t")])
        return deployment
    }

    @Test("request bodies: unknown actions list the valid ones; arguments belong to their action")
    func parsing() throws {
        #expect(try RolloutAction(name: "promote", full: true) == .promote(full: true))
        #expect(try RolloutAction(name: "undo", toRevision: 2) == .undo(toRevision: 2))
        #expect(throws: RolloutActionError(code: 422, path: "action", message: "unknown action \"restart\"; valid actions: promote, abort, pause, resume, undo")) {
            try RolloutAction(name: "restart")
        }
        #expect(throws: RolloutActionError(code: 422, path: "full", message: "applies only to action promote, not abort")) {
            try RolloutAction(name: "abort", full: true)
        }
        #expect(throws: RolloutActionError.self) { try RolloutAction(name: "undo", toRevision: 0) }
    }

    @Test("promote, abort, pause and resume record the request and an event")
    func requests() throws {
        var deployment = running()
        try RolloutAction.promote(full: false).apply(to: &deployment, now: t0)
        #expect(deployment.status?.rollout?.promote == .step)
        try RolloutAction.promote(full: true).apply(to: &deployment, now: t0)
        try RolloutAction.promote(full: false).apply(to: &deployment, now: t0)
        #expect(deployment.status?.rollout?.promote == .full, "a full promote is not downgraded")
        try RolloutAction.abort.apply(to: &deployment, now: t0)
        #expect(deployment.status?.rollout?.abortRequested == true)
        try RolloutAction.pause.apply(to: &deployment, now: t0)
        let paused = deployment
        try RolloutAction.pause.apply(to: &deployment, now: t0)
        #expect(deployment == paused, "pausing twice changes nothing")
        try RolloutAction.resume.apply(to: &deployment, now: t0)
        #expect(deployment.status?.rollout?.paused == nil)
        #expect(deployment.status?.events?.map(\.reason) == ["PromoteRequested", "PromoteRequested", "PromoteRequested", "AbortRequested", "PauseRequested", "ResumeRequested"])
        #expect(throws: RolloutActionError.self) { try RolloutAction.resume.apply(to: &deployment, now: t0) }
    }

    @Test("without a canary in progress, 409 says so")
    func noCanary() {
        var deployment = cart()
        #expect(throws: RolloutActionError(code: 409, message: "deployment default/cart has no canary in progress; nothing to promote (a canary starts when a new template is applied with strategy type Canary)")) {
            try RolloutAction.promote(full: false).apply(to: &deployment, now: t0)
        }
    }

    @Test("undo goes to the previous revision or the one named; not to the current one or one not kept")
    func undo() throws {
        var deployment = running()
        try RolloutAction.undo(toRevision: nil).apply(to: &deployment, now: t0)
        #expect(deployment.spec.template == template("v1"))
        #expect(deployment.metadata.generation == 2)
        #expect(deployment.status?.events?.last?.reason == "UndoRequested")

        var other = running()
        #expect(throws: RolloutActionError(code: 409, message: "deployment default/cart already runs revision 2 (\(hash("v2"))); nothing to undo")) {
            try RolloutAction.undo(toRevision: 2).apply(to: &other, now: t0)
        }
        #expect(throws: RolloutActionError(code: 409, path: "toRevision", message: "deployment default/cart has no revision 7; it keeps revisions 1, 2 (see weft rollout history)")) {
            try RolloutAction.undo(toRevision: 7).apply(to: &other, now: t0)
        }
        try RolloutAction.undo(toRevision: 1).apply(to: &other, now: t0)
        #expect(other.spec.template == template("v1"))

        var fresh = cart()
        #expect(throws: RolloutActionError.self) { try RolloutAction.undo(toRevision: nil).apply(to: &fresh, now: t0) }
    }
}

@Suite("Endpoints split")
struct EndpointsSplitTests {
    private func endpoint(_ name: String, _ revision: String) -> Endpoint {
        Endpoint(replica: name, node: "n1", ip: "127.0.0.1", ports: ["80": 9000], revision: revision)
    }

    @Test("a running canary of a deployment behind the service splits its traffic; none otherwise")
    func split() {
        let service = Service(metadata: ObjectMeta(name: "cart", namespace: "default"),
                              spec: ServiceSpec(selector: ["app": "cart"], ports: [ServicePort(name: "http", port: 80)]))
        let both = [endpoint("a", "s"), endpoint("b", "c")]
        var deployment = cart("v2")
        #expect(Endpoints.split(for: service, deployments: [deployment], endpoints: both) == nil)
        deployment.status = DeploymentStatus(rollout: RolloutStatus(phase: .progressing, stableRevision: "s", canaryRevision: "c", weight: 30))
        #expect(Endpoints.split(for: service, deployments: [deployment], endpoints: both)
                == [TrafficWeight(revision: "c", weight: 30), TrafficWeight(revision: "s", weight: 70)])
        var elsewhere = deployment
        elsewhere.metadata.namespace = "shop"
        #expect(Endpoints.split(for: service, deployments: [elsewhere], endpoints: both) == nil)
    }

    @Test("a revision without endpoints gives its share to the other")
    func revisionWithoutEndpoints() {
        let service = Service(metadata: ObjectMeta(name: "cart", namespace: "default"),
                              spec: ServiceSpec(selector: ["app": "cart"], ports: [ServicePort(name: "http", port: 80)]))
        var deployment = cart("v2")
        deployment.status = DeploymentStatus(rollout: RolloutStatus(phase: .progressing, stableRevision: "s", canaryRevision: "c", weight: 30))
        #expect(Endpoints.split(for: service, deployments: [deployment], endpoints: [endpoint("a", "s")])
                == [TrafficWeight(revision: "c", weight: 0), TrafficWeight(revision: "s", weight: 100)])
        #expect(Endpoints.split(for: service, deployments: [deployment], endpoints: [endpoint("b", "c")])
                == [TrafficWeight(revision: "c", weight: 100), TrafficWeight(revision: "s", weight: 0)])
        #expect(Endpoints.split(for: service, deployments: [deployment], endpoints: [])
                == [TrafficWeight(revision: "c", weight: 30), TrafficWeight(revision: "s", weight: 70)])
    }
}
