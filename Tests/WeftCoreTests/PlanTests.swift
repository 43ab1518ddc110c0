import Testing
@testable import WeftCore

private typealias View = DeploymentPlan.ReplicaView

private func view(_ name: String, _ hash: String, ready: Bool = true, terminating: Bool = false, rev: Int64) -> View {
    View(name: name, templateHash: hash, ready: ready, terminating: terminating, createdRevision: rev)
}

/// Plans toward `desired` replicas of the template hashed "new".
private func plan(_ desired: Int, strategy: DeploymentStrategy? = nil, generation: Int? = 1, _ replicas: [View]) -> DeploymentPlan {
    DeploymentPlan.plan(desired: desired, templateHash: "new", strategy: strategy, generation: generation, replicas: replicas)
}

private func rolling(surge: PortReference?, unavailable: PortReference?) -> DeploymentStrategy {
    DeploymentStrategy(type: "RollingUpdate", rollingUpdate: RollingUpdateStrategy(maxSurge: surge, maxUnavailable: unavailable))
}

private let recreate = DeploymentStrategy(type: "Recreate")

/// A toy cluster that carries plans out: deleted replicas start terminating (and vanish on the next
/// tick), created ones start unready.
private struct SimCluster {
    var replicas: [View]
    var revision: Int64 = 100

    init(old: Int) {
        replicas = (0..<old).map { view("old-\($0 + 1)", "old", ready: true, rev: Int64($0 + 1)) }
    }

    var live: [View] { replicas.filter { !$0.terminating } }
    var readyCount: Int { live.filter(\.ready).count }

    mutating func apply(_ plan: DeploymentPlan, hash: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Set(plan.delete).count == plan.delete.count, "a replica deleted twice: \(plan.delete)", sourceLocation: sourceLocation)
        for name in plan.delete {
            guard let i = replicas.firstIndex(where: { $0.name == name }) else {
                Issue.record("plan deletes unknown replica \(name)", sourceLocation: sourceLocation)
                continue
            }
            #expect(!replicas[i].terminating, "plan deletes \(name), already terminating", sourceLocation: sourceLocation)
            replicas[i].terminating = true
            replicas[i].ready = false
        }
        #expect(plan.create >= 0)
        for _ in 0..<max(0, plan.create) {
            revision += 1
            replicas.append(view("\(hash)-\(revision)", hash, ready: false, rev: revision))
        }
    }

    mutating func tick() {
        replicas.removeAll(where: \.terminating)
        for i in replicas.indices { replicas[i].ready = true }
    }
}

@Suite("DeploymentPlan: scaling")
struct ScalingPlanTests {
    @Test func scaleUpFromZero() {
        let p = plan(3, generation: 5, [])
        #expect(p == DeploymentPlan(create: 3, delete: [],
                                    status: DeploymentStatus(observedGeneration: 5, replicas: 0, updatedReplicas: 0, readyReplicas: 0)))
    }

    @Test func scaleUpCreatesOnlyTheMissing() {
        let p = plan(5, [view("a", "new", rev: 1), view("b", "new", ready: false, rev: 2)])
        #expect(p.create == 3)
        #expect(p.delete.isEmpty)
    }

    @Test func scaleDownDeletesUnreadyFirstThenNewest() {
        let replicas = [
            view("r1", "new", ready: true, rev: 1), view("r2", "new", ready: false, rev: 2), view("r3", "new", ready: true, rev: 3),
            view("r4", "new", ready: true, rev: 4), view("r5", "new", ready: false, rev: 5),
        ]
        let p = plan(2, replicas)
        #expect(p.create == 0)
        // Both unready replicas (newest first), then the newest ready one; the two oldest ready ones stay.
        #expect(p.delete == ["r5", "r2", "r4"])
    }

    @Test func scaleDownIgnoresInputOrder() {
        let replicas = [view("b", "new", rev: 7), view("c", "new", rev: 9), view("a", "new", rev: 8)]
        #expect(plan(1, replicas).delete == ["c", "a"])
        #expect(plan(1, Array(replicas.reversed())).delete == ["c", "a"])
    }

    @Test func scaleToZeroDeletesEverything() {
        let replicas = [view("a", "new", rev: 1), view("b", "new", ready: false, rev: 2)]
        let p = plan(0, replicas)
        #expect(Set(p.delete) == ["a", "b"])
        #expect(p.create == 0)
    }

    @Test(arguments: [true, false])
    func steadyStateDoesNothing(ready: Bool) {
        let replicas = (1...3).map { view("r\($0)", "new", ready: ready, rev: Int64($0)) }
        let p = plan(3, generation: 4, replicas)
        #expect(p == DeploymentPlan(create: 0, delete: [],
                                    status: DeploymentStatus(observedGeneration: 4, replicas: 3, updatedReplicas: 3, readyReplicas: ready ? 3 : 0)))
    }

    @Test func terminatingReplicasDoNotCount() {
        let live = (1...3).map { view("r\($0)", "new", rev: Int64($0)) }
        let terminating = [view("t1", "new", ready: false, terminating: true, rev: 10), view("t2", "new", ready: true, terminating: true, rev: 11)]
        let steady = plan(3, live + terminating)
        #expect(steady.create == 0)
        #expect(steady.delete.isEmpty)
        #expect(steady.status.replicas == 3)
        #expect(steady.status.readyReplicas == 3, "a terminating replica is never counted ready")

        // One live replica short: the terminating one does not stand in for it.
        let short = plan(3, Array(live.prefix(2)) + terminating)
        #expect(short.create == 1)

        // Scaling down never picks a replica that is already going away.
        let down = plan(1, live + terminating)
        #expect(down.delete == ["r3", "r2"])
    }
}

@Suite("DeploymentPlan: rolling update")
struct RollingUpdatePlanTests {
    @Test func firstStepWithDefaultsForThreeReplicas() {
        // 25% of 3: surge rounds up to 1, unavailable rounds down to 0.
        let old = (1...3).map { view("o\($0)", "old", rev: Int64($0)) }
        let p = plan(3, old)
        #expect(p.create == 1)
        #expect(p.delete.isEmpty)
        #expect(p.status == DeploymentStatus(observedGeneration: 1, replicas: 3, updatedReplicas: 0, readyReplicas: 3))
    }

    @Test func firstStepWithDefaultsForFourReplicas() {
        // 25% of 4 = 1 each way: one new replica and one old (the newest) removed at once.
        let old = (1...4).map { view("o\($0)", "old", rev: Int64($0)) }
        let p = plan(4, old)
        #expect(p.create == 1)
        #expect(p.delete == ["o4"])
    }

    @Test func noOldReplicaIsRemovedUntilNewOnesAreReady() {
        // 3 replicas, defaults: a new replica exists but is not ready, so nothing may go.
        let replicas = (1...3).map { view("o\($0)", "old", rev: Int64($0)) } + [view("n1", "new", ready: false, rev: 10)]
        let p = plan(3, replicas)
        #expect(p == DeploymentPlan(create: 0, delete: [],
                                    status: DeploymentStatus(observedGeneration: 1, replicas: 4, updatedReplicas: 1, readyReplicas: 3)))
        // Once it is ready, one old replica (the newest) can go.
        var ready = replicas
        ready[3].ready = true
        #expect(plan(3, ready).delete == ["o3"])
    }

    @Test func unreadyOldReplicasAreRemovedAtOnce() {
        let replicas = [view("o1", "old", rev: 1), view("o2", "old", rev: 2), view("o3", "old", ready: false, rev: 3)]
        let p = plan(3, replicas)
        #expect(p.delete == ["o3"])
        #expect(p.create == 1)
    }

    @Test func maxSurgeZeroMaxUnavailableOne() {
        let strategy = rolling(surge: .number(0), unavailable: .number(1))
        let old = (1...3).map { view("o\($0)", "old", rev: Int64($0)) }
        let first = plan(3, strategy: strategy, old)
        #expect(first.create == 0, "no surge: nothing may be added while 3 replicas are live")
        #expect(first.delete == ["o3"])

        var next = old
        next[2].terminating = true
        next[2].ready = false
        let second = plan(3, strategy: strategy, next)
        #expect(second.create == 1)
        #expect(second.delete.isEmpty, "2 ready is the minimum; no further old replica may go")
    }

    @Test func scaleDownDuringUpdateRespectsAvailability() {
        // 4 old, now desired 2 (surge 1, unavailable 0): two old ones go, nothing is created yet.
        let old = (1...4).map { view("o\($0)", "old", rev: Int64($0)) }
        let p = plan(2, old)
        #expect(p.create == 0)
        #expect(p.delete == ["o4", "o3"])
    }

    @Test func excessNewReplicasAreTrimmedDuringUpdate() {
        // Desired dropped to 1 while two new replicas and one old exist.
        let replicas = [view("o1", "old", rev: 1), view("n1", "new", rev: 10), view("n2", "new", ready: false, rev: 11)]
        let p = plan(1, replicas)
        #expect(p.create == 0)
        #expect(p.delete.first == "n2")
        #expect(p.delete.contains("o1"))
        #expect(!p.delete.contains("n1"))
    }

    struct RolloutCase: Sendable, CustomTestStringConvertible {
        var desired: Int
        var strategy: DeploymentStrategy?
        /// Worked out by hand from the rules (surge rounds up, unavailable down, never both zero).
        var surge: Int
        var unavailable: Int
        var testDescription: String {
            "\(desired) replicas, surge \(strategy?.rollingUpdate?.maxSurge?.description ?? "default") unavailable \(strategy?.rollingUpdate?.maxUnavailable?.description ?? "default")"
        }
    }

    static let rollouts: [RolloutCase] = [
        RolloutCase(desired: 3, strategy: nil, surge: 1, unavailable: 0),
        RolloutCase(desired: 4, strategy: nil, surge: 1, unavailable: 1),
        RolloutCase(desired: 10, strategy: nil, surge: 3, unavailable: 2),
        RolloutCase(desired: 1, strategy: nil, surge: 1, unavailable: 0),
        RolloutCase(desired: 3, strategy: rolling(surge: .number(0), unavailable: .number(1)), surge: 0, unavailable: 1),
        RolloutCase(desired: 5, strategy: rolling(surge: .name("50%"), unavailable: .number(0)), surge: 3, unavailable: 0),
        RolloutCase(desired: 6, strategy: rolling(surge: .number(2), unavailable: .name("50%")), surge: 2, unavailable: 3),
        RolloutCase(desired: 2, strategy: rolling(surge: .number(0), unavailable: .number(0)), surge: 1, unavailable: 0),
        RolloutCase(desired: 4, strategy: DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxUnavailable: .name("100%"))), surge: 1, unavailable: 4),
    ]

    @Test(arguments: rollouts)
    func rolloutStaysWithinBoundsAndConverges(_ c: RolloutCase) {
        var cluster = SimCluster(old: c.desired)
        let maxLive = c.desired + c.surge
        let minReady = c.desired - c.unavailable
        var minReadySeen = cluster.readyCount
        var converged = false

        // The surge is used at once: the first step adds min(surge, desired) new replicas.
        #expect(plan(c.desired, strategy: c.strategy, cluster.replicas).create == min(c.surge, c.desired))

        for _ in 0..<(4 * c.desired + 10) {
            // Plan twice before anything changes: re-planning on an unchanged cluster must not overshoot.
            for _ in 0..<2 {
                let p = plan(c.desired, strategy: c.strategy, cluster.replicas)
                cluster.apply(p, hash: "new")
                #expect(cluster.live.count <= maxLive, "live \(cluster.live.map(\.name))")
                #expect(cluster.readyCount >= minReady, "ready \(cluster.readyCount) in \(cluster.replicas)")
                minReadySeen = min(minReadySeen, cluster.readyCount)
            }
            cluster.tick()
            let final = plan(c.desired, strategy: c.strategy, cluster.replicas)
            if cluster.replicas.allSatisfy({ $0.templateHash == "new" && $0.ready }) && cluster.replicas.count == c.desired {
                #expect(final.create == 0 && final.delete.isEmpty)
                #expect(final.status == DeploymentStatus(observedGeneration: 1, replicas: c.desired, updatedReplicas: c.desired, readyReplicas: c.desired))
                converged = true
                break
            }
        }
        #expect(converged, "rollout did not finish: \(cluster.replicas)")
        // The unavailability budget is used too, rather than crawling one replica at a time.
        #expect(minReadySeen == minReady)
    }
}

@Suite("DeploymentPlan: Recreate")
struct RecreatePlanTests {
    @Test func deletesAllOldFirstAndCreatesNothing() {
        let old = [view("o1", "old", rev: 1), view("o2", "old", ready: false, rev: 2), view("o3", "old", rev: 3)]
        let p = plan(3, strategy: recreate, old)
        #expect(Set(p.delete) == ["o1", "o2", "o3"])
        #expect(p.delete.count == 3)
        #expect(p.create == 0)
    }

    @Test func waitsWhileOldReplicasAreTerminating() {
        let terminating = [view("o1", "old", ready: false, terminating: true, rev: 1)]
        let p = plan(3, strategy: recreate, terminating)
        #expect(p.create == 0)
        #expect(p.delete.isEmpty)
        #expect(p.status.replicas == 0)
    }

    @Test func deletesOnlyOldWhenNewAlreadyExist() {
        let replicas = [view("n1", "new", rev: 5), view("o1", "old", rev: 1), view("o2", "old", rev: 2)]
        let p = plan(3, strategy: recreate, replicas)
        #expect(Set(p.delete) == ["o1", "o2"])
        #expect(p.create == 0)
    }

    @Test func createsOnceNoOldReplicaRemains() {
        #expect(plan(3, strategy: recreate, []).create == 3)
        // A terminating replica of the *current* template does not block creation.
        let p = plan(2, strategy: recreate, [view("n0", "new", ready: false, terminating: true, rev: 4)])
        #expect(p.create == 2)
    }

    @Test func fullRecreateNeverRunsOldAndNewTogether() {
        var cluster = SimCluster(old: 3)
        var rounds = 0
        while rounds < 10 {
            let p = plan(3, strategy: recreate, cluster.replicas)
            cluster.apply(p, hash: "new")
            let hashes = Set(cluster.replicas.map(\.templateHash))
            #expect(hashes.count <= 1, "old and new coexist: \(cluster.replicas)")
            cluster.tick()
            rounds += 1
            if cluster.replicas.count == 3 && cluster.replicas.allSatisfy({ $0.templateHash == "new" }) { break }
        }
        #expect(rounds == 2, "one round to delete, one to create")
        #expect(cluster.replicas.allSatisfy { $0.templateHash == "new" })
    }
}

@Suite("DeploymentPlan: status and bounds")
struct PlanStatusTests {
    @Test func statusCounts() {
        let replicas = [
            view("o1", "old", rev: 1), view("o2", "old", rev: 2), view("o3", "old", ready: false, terminating: true, rev: 3),
            view("n1", "new", rev: 4), view("n2", "new", ready: false, rev: 5), view("n3", "new", ready: false, terminating: true, rev: 6),
        ]
        let p = plan(3, generation: 7, replicas)
        #expect(p.status == DeploymentStatus(observedGeneration: 7, replicas: 4, updatedReplicas: 2, readyReplicas: 3))
    }

    @Test func replicaViewFromReplica() {
        let template = WorkloadSpec(command: ["/bin/app"])
        var replica = Replica(metadata: ObjectMeta(name: "web-abc-x"),
                              spec: ReplicaSpec(deployment: "web", node: "n1", templateHash: "h1", template: template),
                              status: ReplicaStatus(phase: .ready, ready: true))
        let live = View(replica, createdRevision: 9)
        #expect(live == view("web-abc-x", "h1", ready: true, terminating: false, rev: 9))

        replica.metadata.deletionTimestamp = "2024-01-01T00:00:00Z"
        let going = View(replica, createdRevision: 9)
        #expect(going.terminating)
        #expect(!going.ready, "a terminating replica is not ready even if its last status said so")

        let noStatus = Replica(metadata: ObjectMeta(name: "r"), spec: replica.spec)
        #expect(!View(noStatus, createdRevision: 1).ready)
    }

    @Test(arguments: [
        // (desired, expected surge, expected unavailable) with the 25%/25% defaults
        (0, 1, 0), (1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 1, 1), (5, 2, 1), (8, 2, 2), (10, 3, 2), (100, 25, 25),
    ])
    func rollingBoundsDefaults(desired: Int, surge: Int, unavailable: Int) {
        let bounds = DeploymentPlan.rollingBounds(desired: desired, strategy: nil)
        #expect(bounds.surge == surge)
        #expect(bounds.unavailable == unavailable)
        // A strategy without rollingUpdate, or RollingUpdate with nothing set, means the same.
        let empty = DeploymentPlan.rollingBounds(desired: desired, strategy: DeploymentStrategy(type: "RollingUpdate", rollingUpdate: RollingUpdateStrategy()))
        #expect(empty == bounds)
    }

    @Test func rollingBoundsExplicitAndInvalidValues() {
        #expect(DeploymentPlan.rollingBounds(desired: 5, strategy: rolling(surge: .number(2), unavailable: .name("50%"))) == (2, 2))
        #expect(DeploymentPlan.rollingBounds(desired: 5, strategy: rolling(surge: .name("50%"), unavailable: .number(0))) == (3, 0))
        #expect(DeploymentPlan.rollingBounds(desired: 5, strategy: rolling(surge: .number(0), unavailable: .number(0))) == (1, 0), "never both zero")
        #expect(DeploymentPlan.rollingBounds(desired: 3, strategy: rolling(surge: .number(0), unavailable: nil)) == (1, 0), "25% of 3 rounds down to 0")
        // Values validation would refuse fall back to the defaults.
        #expect(DeploymentPlan.rollingBounds(desired: 8, strategy: rolling(surge: .name("lots"), unavailable: .number(-1))) == (2, 2))
    }
}
