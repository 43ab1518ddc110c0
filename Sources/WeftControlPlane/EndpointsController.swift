import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftStore

/// Keeps one `Endpoints` object per service: the addresses of its ready replicas on ready nodes. Woken by
/// store watch events for services, replicas and node readiness, so a replica that stops being ready
/// leaves its services' endpoints within milliseconds of its agent's report, and every replica of a node
/// that goes NotReady leaves them as soon as the node is marked.
///
/// While a canary of a deployment that backs the service runs, `split` gives the canary revision its
/// weight and the stable revision the rest (``Endpoints/split(for:deployments:endpoints:)``); deployment
/// events wake it only when a rollout's weight or revisions change.
public struct EndpointsController: ServiceLifecycle.Service {
    typealias Key = NamespacedName

    let registry: Registry
    let logger: Logger

    public init(registry: Registry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        let queue = WorkQueue<Key>()
        let start = try await registry.store.currentRevision()
        for (service, _) in try await registry.typedList(Service.self, namespace: nil) {
            queue.add(Key(namespace: service.namespace, name: service.name))
        }
        for (endpoints, _) in try await registry.typedList(Endpoints.self, namespace: nil) {
            queue.add(Key(namespace: endpoints.namespace, name: endpoints.name))
        }
        let nodes = NodeViews()
        for (node, _) in try await registry.typedList(Node.self, namespace: nil) {
            _ = nodes.update(node.name, SchedulingNode(node))
        }
        let splits = SplitViews()
        for (deployment, _) in try await registry.typedList(Deployment.self, namespace: nil) {
            _ = splits.update(Key(namespace: deployment.namespace, name: deployment.name), SplitViews.view(of: deployment))
        }
        try await queue.run(following: registry.store, after: start, logger: logger, retryDelay: .milliseconds(100),
                            keys: { try await self.keys(for: $0, nodes: nodes, splits: splits) }, reconcile: { try await self.reconcile($0) })
    }

    /// The services a change concerns: the service itself, every service in a changed replica's namespace,
    /// every service when a node's readiness changed, or the services in a deployment's namespace when its
    /// canary's weight or revisions changed.
    private func keys(for event: WatchEvent, nodes: NodeViews, splits: SplitViews) async throws -> [Key] {
        let key = event.object.key
        switch key.kind {
        case ResourceKind.service.rawValue:
            return [Key(namespace: key.namespace, name: key.name)]
        case ResourceKind.replica.rawValue:
            return try await registry.typedList(Service.self, namespace: key.namespace).map { Key(namespace: $0.object.namespace, name: $0.object.name) }
        case ResourceKind.node.rawValue:
            let node = event.type == .deleted ? nil : (try? JSONDecoder().decode(Node.self, from: event.object.data))
            guard nodes.update(key.name, node.map(SchedulingNode.init)).changed else { return [] }
            return try await registry.typedList(Service.self, namespace: nil).map { Key(namespace: $0.object.namespace, name: $0.object.name) }
        case ResourceKind.deployment.rawValue:
            let deployment = event.type == .deleted ? nil : (try? JSONDecoder().decode(Deployment.self, from: event.object.data))
            guard splits.update(Key(namespace: key.namespace, name: key.name), deployment.flatMap(SplitViews.view)) else { return [] }
            return try await registry.typedList(Service.self, namespace: key.namespace).map { Key(namespace: $0.object.namespace, name: $0.object.name) }
        default:
            return []
        }
    }

    func reconcile(_ key: Key) async throws {
        let storeKey = ResourceCodec.key(.endpoints, namespace: key.namespace, name: key.name)
        let existing = try await registry.typed(Endpoints.self, namespace: key.namespace, name: key.name)
        guard let (service, _) = try await registry.typed(Service.self, namespace: key.namespace, name: key.name) else {
            if let (_, stored) = existing {
                try await registry.store.commit([.delete(storeKey, ifRevision: stored.revision)])
            }
            return
        }
        let replicas = try await registry.typedList(Replica.self, namespace: key.namespace).map(\.object)
        let notReady = Set(try await registry.typedList(Node.self, namespace: nil).map(\.object).filter { $0.status?.ready != true }.map(\.name))
        let endpoints = Endpoints.compute(for: service, replicas: replicas, unavailableNodes: notReady)
        let split = Endpoints.split(for: service, deployments: try await registry.typedList(Deployment.self, namespace: key.namespace).map(\.object),
                                    endpoints: endpoints)
        if let (current, stored) = existing {
            guard current.endpoints != endpoints || current.split != split else { return }
            var updated = current
            updated.endpoints = endpoints
            updated.split = split
            try await registry.store.commit([.update(storeKey, try ResourceCodec.encode(updated), ifRevision: stored.revision)])
        } else {
            var metadata = ObjectMeta(name: service.name, namespace: service.namespace, labels: service.metadata.labels)
            metadata.uid = UUID().uuidString.lowercased()
            metadata.creationTimestamp = ResourceCodec.timestamp()
            try await registry.store.commit([.create(storeKey, try ResourceCodec.encode(Endpoints(metadata: metadata, endpoints: endpoints, split: split)))])
        }
        logger.debug("endpoints updated", metadata: ["service": "\(key.namespace)/\(key.name)", "count": "\(endpoints.count)"])
    }
}

/// The canary of each deployment as of the last event (revisions and weight), so deployment events that
/// change no traffic split (replica counts, events) wake no service.
final class SplitViews: Sendable {
    struct View: Sendable, Equatable {
        var canary: String
        var stable: String?
        var weight: Int
    }

    private let views = Mutex<[NamespacedName: View]>([:])

    static func view(of deployment: Deployment) -> View? {
        guard let rollout = deployment.status?.rollout, let canary = rollout.canaryRevision else { return nil }
        return View(canary: canary, stable: rollout.stableRevision, weight: rollout.weight)
    }

    /// Records `view` (nil: no canary, or deleted); says whether it changed.
    func update(_ key: NamespacedName, _ view: View?) -> Bool {
        views.withLock { views in
            let previous = views[key]
            views[key] = view
            return previous != view
        }
    }
}
