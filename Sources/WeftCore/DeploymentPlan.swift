/// What the deployment controller should do next for one deployment, decided from the desired
/// state and the replicas that exist. Pure: the controller carries the plan out and re-plans on the
/// next watch event.
public struct DeploymentPlan: Sendable, Equatable {
    /// How many replicas of the current template to create.
    public var create: Int
    /// Names of replicas to delete gracefully.
    public var delete: [String]
    /// The status the deployment should show.
    public var status: DeploymentStatus
    /// How many replicas of the stable template (`status.rollout.stableRevision`, from `status.history`) to
    /// create: only while a canary runs or after one was aborted.
    public var createStable: Int = 0

    /// A replica as the planner sees it.
    public struct ReplicaView: Sendable, Equatable {
        public var name: String
        public var templateHash: String
        public var ready: Bool
        public var terminating: Bool
        /// Store revision at creation; larger is newer.
        public var createdRevision: Int64
        /// Bound to a node that is NotReady (or gone): the replica is replaced elsewhere and deleted.
        public var lost: Bool

        public init(name: String, templateHash: String, ready: Bool, terminating: Bool, createdRevision: Int64, lost: Bool = false) {
            self.name = name
            self.templateHash = templateHash
            self.ready = ready
            self.terminating = terminating
            self.createdRevision = createdRevision
            self.lost = lost
        }

        public init(_ replica: Replica, createdRevision: Int64, lost: Bool = false) {
            self.init(name: replica.name, templateHash: replica.spec.templateHash, ready: replica.isReady,
                      terminating: replica.isTerminating, createdRevision: createdRevision, lost: lost)
        }
    }

    /// Plans toward `desired` replicas of template `templateHash`.
    ///
    /// A template change is a rolling update bounded by `maxSurge` extra replicas and `maxUnavailable`
    /// missing ready ones (Kubernetes' defaults: 25% each, surge rounded up, unavailable down);
    /// `Recreate` deletes all old replicas before creating new ones. Scaling down deletes unready
    /// replicas first, then the newest.
    ///
    /// Lost replicas (on a NotReady node) are deleted at once and count as missing, so replacements are
    /// created on other nodes; being deleted, they never count toward the surge, and when their node comes
    /// back its agent stops them instead of running them next to their replacements.
    public static func plan(desired: Int, templateHash: String, strategy: DeploymentStrategy?, generation: Int?,
                            replicas: [ReplicaView]) -> DeploymentPlan {
        let lost = replicas.filter { !$0.terminating && $0.lost }
        let live = replicas.filter { !$0.terminating && !$0.lost }
        let current = live.filter { $0.templateHash == templateHash }
        let old = live.filter { $0.templateHash != templateHash }
        let status = DeploymentStatus(observedGeneration: generation, replicas: live.count, updatedReplicas: current.count,
                                      readyReplicas: live.filter(\.ready).count)
        var plan = DeploymentPlan(create: 0, delete: lost.map(\.name).sorted(), status: status)

        if strategy?.type == "Recreate" {
            let oldTerminating = replicas.contains { $0.terminating && $0.templateHash != templateHash }
            if !old.isEmpty || oldTerminating {
                // New replicas start only once every old one is gone.
                plan.delete += old.map(\.name)
                return plan
            }
        }

        if old.isEmpty {
            if current.count < desired {
                plan.create = desired - current.count
            } else if current.count > desired {
                plan.delete += deletionOrder(current).prefix(current.count - desired).map(\.name)
            }
            return plan
        }

        let (maxSurge, maxUnavailable) = rollingBounds(desired: desired, strategy: strategy)
        if current.count < desired {
            plan.create = max(0, min(desired - current.count, desired + maxSurge - live.count))
        } else if current.count > desired {
            plan.delete += deletionOrder(current).prefix(current.count - desired).map(\.name)
        }
        // Old replicas that are not ready carry no traffic: remove them at once. Ready ones go while
        // enough ready replicas remain.
        let minAvailable = max(0, desired - maxUnavailable)
        let deletedReady = Set(plan.delete)
        var ready = live.filter { $0.ready && !deletedReady.contains($0.name) }.count
        for replica in deletionOrder(old) {
            if !replica.ready {
                plan.delete.append(replica.name)
            } else if ready - 1 >= minAvailable {
                plan.delete.append(replica.name)
                ready -= 1
            }
        }
        return plan
    }

    /// maxSurge and maxUnavailable resolved against `desired`; never both zero.
    public static func rollingBounds(desired: Int, strategy: DeploymentStrategy?) -> (surge: Int, unavailable: Int) {
        let rolling = strategy?.rollingUpdate
        let surge = rolling?.maxSurge.flatMap(IntOrPercent.init) ?? .percent(25)
        let unavailable = rolling?.maxUnavailable.flatMap(IntOrPercent.init) ?? .percent(25)
        var s = surge.resolve(total: desired, roundUp: true)
        let u = unavailable.resolve(total: desired, roundUp: false)
        if s == 0 && u == 0 { s = 1 }
        return (s, u)
    }

    /// Unready first, then newest first: the replicas whose loss hurts least.
    static func deletionOrder(_ replicas: [ReplicaView]) -> [ReplicaView] {
        replicas.sorted { a, b in
            if a.ready != b.ready { return !a.ready }
            if a.createdRevision != b.createdRevision { return a.createdRevision > b.createdRevision }
            return a.name > b.name
        }
    }

    /// Plans a canary: `desired` replicas of the `stable` template, `canaryReplicas` of the `canary`
    /// template (none after an abort: `canary` nil), and no replica of any other template. `create` counts
    /// canary replicas, `createStable` stable ones. The stable version keeps its full count while the canary
    /// runs, so aborting never leaves the service short; after promotion the rolling plan replaces it.
    public static func canaryPlan(desired: Int, stable: String, canary: String?, canaryReplicas: Int, generation: Int?,
                                  replicas: [ReplicaView]) -> DeploymentPlan {
        let lost = replicas.filter { !$0.terminating && $0.lost }
        let live = replicas.filter { !$0.terminating && !$0.lost }
        let updated = canary.map { hash in live.filter { $0.templateHash == hash }.count } ?? 0
        let status = DeploymentStatus(observedGeneration: generation, replicas: live.count, updatedReplicas: updated,
                                      readyReplicas: live.filter(\.ready).count)
        var plan = DeploymentPlan(create: 0, delete: lost.map(\.name).sorted(), status: status)
        var wanted = [stable: desired]
        if let canary { wanted[canary] = canaryReplicas }
        for replica in deletionOrder(live) where wanted[replica.templateHash] == nil {
            plan.delete.append(replica.name)
        }
        for (hash, count) in wanted.sorted(by: { $0.key < $1.key }) {
            let existing = live.filter { $0.templateHash == hash }
            if existing.count > count {
                plan.delete += deletionOrder(existing).prefix(existing.count - count).map(\.name)
            } else if hash == stable {
                plan.createStable = count - existing.count
            } else {
                plan.create = count - existing.count
            }
        }
        return plan
    }
}
