import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftStore

/// Drives each deployment's replicas toward its spec: creates replicas of the current template on the
/// node the ``Scheduler`` chooses (a replica no node can take stays Pending with the reason in its
/// status, and is placed when nodes change), deletes surplus and old ones (rolling update), removes
/// replicas of deleted deployments, and keeps the deployment's status. Replicas on a NotReady node are
/// deleted gracefully and replaced on ready nodes (their agent stops them if the node comes back);
/// replicas bound to a node that no longer exists are removed outright, as no agent will.
///
/// It also carries rollouts out (``RolloutProgress``): a canary's steps, weights and replicas, analysis of
/// the canary's traffic as the nodes report it in `status.traffic`, promotion and abort, and records
/// `status.rollout`, `status.events` and `status.history`. Woken by store watch events, and by a timer
/// per deployment only when a timed pause or an analysis interval ends.
public struct DeploymentController: ServiceLifecycle.Service {
    typealias Key = NamespacedName

    let registry: Registry
    let logger: Logger
    let policy: SchedulingPolicy
    let now: @Sendable () -> Date
    /// The open analysis interval of each deployment whose canary carries traffic. In memory only: after a
    /// restart the interval starts over.
    let windows = AnalysisWindows()

    public init(registry: Registry, policy: SchedulingPolicy = .leastAllocated, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.registry = registry
        self.policy = policy
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        let queue = WorkQueue<Key>()
        let timers = WakeTimers(queue: queue)
        defer { timers.cancelAll() }
        let start = try await registry.store.currentRevision()
        for (deployment, _) in try await registry.typedList(Deployment.self, namespace: nil) {
            queue.add(Key(namespace: deployment.namespace, name: deployment.name))
        }
        for (replica, _) in try await registry.typedList(Replica.self, namespace: nil) {
            queue.add(Key(namespace: replica.namespace, name: replica.spec.deployment))
        }
        let nodes = NodeViews()
        for (node, _) in try await registry.typedList(Node.self, namespace: nil) {
            _ = nodes.update(node.name, SchedulingNode(node))
        }
        try await queue.run(following: registry.store, after: start, logger: logger, retryDelay: .milliseconds(200),
                            keys: { try await self.keys(for: $0, nodes: nodes) }, reconcile: { try await self.reconcile($0, timers: timers) })
    }

    /// The deployments a change concerns.
    private func keys(for event: WatchEvent, nodes: NodeViews) async throws -> [Key] {
        switch event.object.key.kind {
        case ResourceKind.deployment.rawValue:
            return [Key(namespace: event.object.key.namespace, name: event.object.key.name)]
        case ResourceKind.replica.rawValue:
            guard let replica = try? JSONDecoder().decode(Replica.self, from: event.object.data) else { return [] }
            return [Key(namespace: replica.namespace, name: replica.spec.deployment)]
        case ResourceKind.node.rawValue:
            // Heartbeats change nothing the scheduler sees; only other changes are worth a look.
            let name = event.object.key.name
            let view = event.type == .deleted ? nil : (try? JSONDecoder().decode(Node.self, from: event.object.data)).map(SchedulingNode.init)
            let change = nodes.update(name, view)
            guard change.changed else { return [] }
            // A node that becomes ready, or changes, may take replicas that are waiting for one; one that
            // stops being ready (or is gone) loses its replicas to other nodes.
            return try await registry.typedList(Replica.self, namespace: nil)
                .filter { $0.object.spec.node.isEmpty || (change.lostReadiness && $0.object.spec.node == name) }
                .map { Key(namespace: $0.object.namespace, name: $0.object.spec.deployment) }
        case ResourceKind.configMap.rawValue, ResourceKind.secret.rawValue:
            // The deployments that use it recompute their template's config digest.
            let name = event.object.key.name
            let isConfigMap = event.object.key.kind == ResourceKind.configMap.rawValue
            return try await registry.typedList(Deployment.self, namespace: event.object.key.namespace)
                .filter { entry in
                    let references = ConfigReferences(entry.object.spec.template.spec)
                    return (isConfigMap ? references.configMaps[name] : references.secrets[name]) != nil
                }
                .map { Key(namespace: $0.object.namespace, name: $0.object.name) }
        default:
            return []
        }
    }

    /// Brings the template's config digest (``ConfigRollout``) up to date; true when it wrote the
    /// deployment, whose change then queues it again.
    private func refreshConfigHash(_ deployment: Deployment, stored: StoredObject) async throws -> Bool {
        let hash = try await registry.configHash(deployment.spec.template.spec, namespace: deployment.namespace)
        let template = ConfigRollout.annotated(deployment, hash: hash)
        guard template != deployment.spec.template else { return false }
        var updated = deployment
        updated.spec.template = template
        updated.metadata.generation = (deployment.metadata.generation ?? 1) + 1
        do {
            try await registry.store.commit([.update(stored.key, try ResourceCodec.encode(updated), ifRevision: stored.revision)])
            logger.info("configuration changed; rolling the deployment", metadata: [
                "deployment": "\(deployment.namespace)/\(deployment.name)", "configHash": "\(hash ?? "none")"])
        } catch let error as StoreError where error.code == .conflict || error.code == .notFound {
            // The change that beat this write queues the deployment again.
        }
        return true
    }

    func reconcile(_ key: Key, timers: WakeTimers<Key>) async throws {
        let replicas = try await registry.typedList(Replica.self, namespace: key.namespace).filter { $0.object.spec.deployment == key.name }
        guard let (deployment, storedDeployment) = try await registry.typed(Deployment.self, namespace: key.namespace, name: key.name) else {
            windows.remove(key)
            for (replica, _) in replicas where !replica.isTerminating {
                try await markTerminating(replica)
            }
            return
        }
        if try await refreshConfigHash(deployment, stored: storedDeployment) { return }
        let nodes = try await registry.typedList(Node.self, namespace: nil).map(\.object)
        let readyNodes = Set(nodes.filter { $0.status?.ready == true }.map(\.name))
        let knownNodes = Set(nodes.map(\.name))
        for (replica, _) in replicas where !replica.spec.node.isEmpty && !knownNodes.contains(replica.spec.node) {
            try await removeFromDeletedNode(replica)
        }
        let hash = TemplateHash.of(deployment.spec.template)
        let views = replicas.map { replica, stored in
            DeploymentPlan.ReplicaView(replica, createdRevision: stored.createdRevision,
                                       lost: !replica.spec.node.isEmpty && !readyNodes.contains(replica.spec.node))
        }
        let now = self.now()
        let (analysis, nextWindow) = try await analyse(deployment, key: key, hash: hash, nodes: nodes, now: now)
        let decision = RolloutProgress.decide(.init(deployment: deployment, templateHash: hash, replicas: views, now: now, analysis: analysis))
        let rollout = decision.rollout
        var plan: DeploymentPlan
        var stableTemplate: ReplicaTemplate?
        if let stable = rollout.stableRevision, stable != hash, deployment.spec.strategy?.resolvedType == "Canary" {
            // A canary runs beside the stable version, or was aborted and the stable version runs alone.
            plan = DeploymentPlan.canaryPlan(
                desired: deployment.spec.desiredReplicas, stable: stable, canary: rollout.canaryRevision,
                canaryReplicas: RolloutProgress.canaryReplicas(desired: deployment.spec.desiredReplicas, weight: rollout.weight),
                generation: deployment.metadata.generation, replicas: views)
            stableTemplate = decision.history.first { $0.hash == stable }?.template
            if stableTemplate == nil && plan.createStable > 0 {
                logger.warning("the stable template is not in the deployment's history; its replicas cannot be re-created", metadata: [
                    "deployment": "\(key)", "stable": "\(stable)"])
                plan.createStable = 0
            }
        } else {
            plan = DeploymentPlan.plan(desired: deployment.spec.desiredReplicas, templateHash: hash, strategy: deployment.spec.strategy,
                                       generation: deployment.metadata.generation, replicas: views)
        }

        // The status first, compared and swapped against the deployment as read: a promote or abort a user
        // recorded meanwhile is never overwritten, and nothing is carried out for a decision not recorded.
        var status = plan.status
        status.events = deployment.status?.events
        status = decision.applied(to: status)
        if deployment.status != status {
            var updated = deployment
            updated.status = status
            do {
                try await registry.store.commit([.update(storedDeployment.key, try ResourceCodec.encode(updated), ifRevision: storedDeployment.revision)])
            } catch let error as StoreError where error.code == .conflict || error.code == .notFound {
                // The change that beat this write queues the deployment again.
                return
            }
        }
        windows.set(key, nextWindow)
        if let window = nextWindow { timers.schedule(key, at: window.end) }
        if let wakeAt = decision.wakeAt { timers.schedule(key, at: wakeAt) }
        logOutcome(decision, key: key)
        let lost = replicas.filter { !$0.object.isTerminating && !$0.object.spec.node.isEmpty && !readyNodes.contains($0.object.spec.node) }
        if !lost.isEmpty {
            logger.info("replacing replicas of NotReady or deleted nodes", metadata: [
                "deployment": "\(key.namespace)/\(key.name)", "replicas": "\(lost.map { "\($0.object.name)@\($0.object.spec.node)" }.sorted())",
            ])
        }

        // Deletions first: at no moment do the replicas being replaced count alongside their replacements.
        for name in plan.delete {
            if let replica = replicas.first(where: { $0.object.name == name })?.object {
                try await markTerminating(replica)
            }
        }
        let deleted = Set(plan.delete)
        let unbound = replicas.map(\.object).filter { $0.spec.node.isEmpty && !$0.isTerminating && !deleted.contains($0.name) }
        if plan.create > 0 || plan.createStable > 0 || !unbound.isEmpty {
            var scheduler = try await snapshot()
            let request = PlacementRequest(spreadKey: PlacementRequest.spreadKey(namespace: key.namespace, deployment: key.name),
                                           workload: deployment.spec.template.spec)
            // Replicas waiting for a node go first: they were asked for earlier.
            for replica in unbound.sorted(by: { $0.name < $1.name }) {
                try await bind(replica, scheduler.place(PlacementRequest(replica)))
            }
            var batches: [(template: ReplicaTemplate, hash: String, count: Int)] = [(deployment.spec.template, hash, plan.create)]
            if let stableTemplate, let stable = rollout.stableRevision { batches.append((stableTemplate, stable, plan.createStable)) }
            for batch in batches where batch.count > 0 {
                let request = batch.hash == hash ? request
                    : PlacementRequest(spreadKey: request.spreadKey, workload: batch.template.spec)
                var writes: [Write] = []
                var generator = SystemRandomNumberGenerator()
                var pending = 0
                for _ in 0..<batch.count {
                    let placement = scheduler.place(request)
                    if case .failure = placement { pending += 1 }
                    let replica = newReplica(of: deployment, template: batch.template, hash: batch.hash, placement: placement,
                                             suffix: TemplateHash.randomSuffix(using: &generator))
                    writes.append(.create(ResourceCodec.key(of: replica), try ResourceCodec.encode(replica)))
                }
                try await registry.store.commit(writes)
                logger.info("created replicas", metadata: ["deployment": "\(key.namespace)/\(key.name)", "revision": "\(batch.hash)",
                                                           "count": "\(batch.count)", "unschedulable": "\(pending)"])
            }
        }
    }

    /// Measures the canary's traffic when its analysis interval has ended: the interval's figures judged,
    /// and the window to keep next (a fresh one from now). An interval starts when the canary first carries
    /// traffic; none is kept while no canary does, or when the strategy asks for no analysis.
    private func analyse(_ deployment: Deployment, key: Key, hash: String, nodes: [Node], now: Date) async throws
        -> (AnalysisRun?, AnalysisWindow?) {
        guard deployment.spec.strategy?.resolvedType == "Canary", let analysis = deployment.spec.strategy?.canary?.analysis,
              let rollout = deployment.status?.rollout, let canary = rollout.canaryRevision, canary == hash, rollout.weight > 0,
              rollout.abortRequested != true else {
            return (nil, nil)
        }
        let services = try await registry.typedList(Service.self, namespace: key.namespace).map(\.object)
            .filter { LabelSelector(matchLabels: $0.spec.selector).matches(deployment.spec.template.metadata?.labels) }
            .map { "\($0.namespace)/\($0.name)" }
        let snapshot = TrafficSnapshot(reports: nodes.map { ($0.name, $0.status?.traffic ?? []) }, services: Set(services))
        let fresh = AnalysisWindow(canary: canary, start: now, end: now.addingTimeInterval(analysis.intervalDuration.timeInterval), snapshot: snapshot)
        guard let window = windows.get(key), window.canary == canary else { return (nil, fresh) }
        guard now >= window.end else { return (nil, window) }
        let traffic = snapshot.since(window.snapshot)
        let stable = rollout.stableRevision.map { VersionMetrics.measure(revision: $0, role: "stable", in: traffic) }
        let run = analysis.judge(canary: VersionMetrics.measure(revision: canary, role: "canary", in: traffic), stable: stable,
                                 interval: .milliseconds(Int64((now.timeIntervalSince(window.start) * 1000).rounded())), at: RolloutTime.text(now))
        return (run, fresh)
    }

    private func logOutcome(_ decision: RolloutDecision, key: Key) {
        for event in decision.events {
            let metadata: Logger.Metadata = ["deployment": "\(key)", "reason": "\(event.reason)"]
            if event.type == "Warning" {
                logger.warning("\(event.message)", metadata: metadata)
            } else {
                logger.info("\(event.message)", metadata: metadata)
            }
        }
    }

    /// A replica whose node object is gone has no agent to stop it and remove its object: remove it here.
    private func removeFromDeletedNode(_ replica: Replica) async throws {
        do {
            _ = try await registry.delete(.replica, namespace: replica.namespace, name: replica.name, final: true)
            logger.info("removed a replica of a deleted node", metadata: ["replica": "\(replica.namespace)/\(replica.name)", "node": "\(replica.spec.node)"])
        } catch let failure as APIFailure where failure.code == 404 {
            // Already gone.
        }
    }

    private func markTerminating(_ replica: Replica) async throws {
        do {
            try await registry.update(Replica.self, namespace: replica.namespace, name: replica.name) { Registry.markTerminating(&$0) }
        } catch let failure as APIFailure where failure.code == 404 {
            // Already gone.
        }
    }

    /// The scheduler over every node, with the requests of every replica bound to one already allocated.
    private func snapshot() async throws -> Scheduler {
        let nodes = try await registry.typedList(Node.self, namespace: nil).map(\.object)
        let replicas = try await registry.typedList(Replica.self, namespace: nil).map(\.object)
        return Scheduler(nodes: nodes, replicas: replicas, policy: policy)
    }

    /// Binds a replica that waits for a node, or records in its status why it still waits.
    private func bind(_ replica: Replica, _ placement: Result<String, Unschedulable>) async throws {
        try await registry.update(Replica.self, namespace: replica.namespace, name: replica.name) { r in
            guard r.spec.node.isEmpty, !r.isTerminating else { return false }
            switch placement {
            case .success(let node):
                r.spec.node = node
                r.status?.message = nil
            case .failure(let reason):
                guard r.status?.message != reason.description else { return false }
                var status = r.status ?? ReplicaStatus(phase: .pending)
                status.message = reason.description
                r.status = status
            }
            return true
        }
    }

    private func newReplica(of deployment: Deployment, template: ReplicaTemplate, hash: String, placement: Result<String, Unschedulable>,
                            suffix: String) -> Replica {
        var metadata = ObjectMeta(name: TemplateHash.replicaName(deployment: deployment.name, hash: hash, suffix: suffix),
                                  namespace: deployment.namespace, labels: template.metadata?.labels)
        metadata.uid = UUID().uuidString.lowercased()
        metadata.creationTimestamp = ResourceCodec.timestamp()
        metadata.generation = 1
        var node = ""
        var message: String?
        switch placement {
        case .success(let chosen): node = chosen
        case .failure(let reason): message = reason.description
        }
        let status = ReplicaStatus(phase: .pending, message: message)
        return Replica(metadata: metadata,
                       spec: ReplicaSpec(deployment: deployment.name, node: node, templateHash: hash, template: template.spec),
                       status: status)
    }
}

/// The scheduler's view of each node as of the last event, so node events that change nothing it sees
/// (heartbeats) wake no deployment.
final class NodeViews: Sendable {
    private let views = Mutex<[String: SchedulingNode]>([:])

    /// Records `view` (nil: deleted); says whether it changed, and whether the node stopped being a place
    /// replicas can run (became NotReady or was deleted).
    func update(_ name: String, _ view: SchedulingNode?) -> (changed: Bool, lostReadiness: Bool) {
        views.withLock { views in
            let previous = views[name]
            views[name] = view
            let lostReadiness = (previous == nil || previous?.ready == true) && view?.ready != true
            return (previous != view, lostReadiness)
        }
    }
}
