import Foundation
import Logging
import WeftCore
import WeftPKI
import WeftStore

/// The API's operations on cluster objects: validation, defaulting and server-managed fields over the
/// store. The HTTP layer and the controllers both go through it.
public struct Registry: Sendable {
    public let store: any ObjectStore
    let logger: Logger
    let serviceIPs: ServiceIPAllocator?
    /// Optimistic-concurrency retries before a write gives up with 409.
    static let maxAttempts = 8

    /// The default block of service virtual IPs: inside 127.0.0.0/8, which Linux routes to the loopback
    /// interface, so the node proxy binds them without root.
    public static let defaultServiceCIDR = IPv4CIDR("127.10.0.0/16")!

    /// Encrypts Secrets at rest and keys the digests of config contents; nil (tests) stores Secrets as
    /// they are.
    let secretsKey: SecretsKey?

    /// `serviceCIDR` nil leaves VIP services without an address (no proxying). With `secretsKey`, Secrets
    /// are kept encrypted in `store` (``SecretEncryptingStore``); `store` is then the decrypting view.
    public init(store: any ObjectStore, serviceCIDR: IPv4CIDR? = Registry.defaultServiceCIDR, secretsKey: SecretsKey? = nil, logger: Logger) {
        self.store = secretsKey.map { SecretEncryptingStore(base: store, key: $0) } ?? store
        self.serviceIPs = serviceCIDR.map(ServiceIPAllocator.init(block:))
        self.secretsKey = secretsKey
        self.logger = logger
    }

    // MARK: - Reads

    public func list(_ kind: ResourceKind, namespace: String?) async throws -> (items: [JSONValue], revision: Int64) {
        let (items, revision) = try await store.list(kind: kind.rawValue, namespace: kind.isNamespaced ? namespace : nil)
        return (try items.map(ResourceCodec.json), revision)
    }

    public func get(_ kind: ResourceKind, namespace: String, name: String) async throws -> JSONValue {
        guard let stored = try await store.get(ResourceCodec.key(kind, namespace: namespace, name: name)) else {
            throw APIFailure.notFound(kind, namespace: namespace, name: name)
        }
        return try ResourceCodec.json(stored)
    }

    public func typed<T: Resource>(_ type: T.Type, namespace: String, name: String) async throws -> (T, StoredObject)? {
        guard let stored = try await store.get(ResourceCodec.key(T.resourceKind, namespace: namespace, name: name)) else { return nil }
        return (try ResourceCodec.decode(T.self, from: stored), stored)
    }

    public func typedList<T: Resource>(_ type: T.Type, namespace: String?) async throws -> [(object: T, stored: StoredObject)] {
        let (items, _) = try await store.list(kind: T.resourceKind.rawValue, namespace: namespace)
        return try items.map { (try ResourceCodec.decode(T.self, from: $0), $0) }
    }

    // MARK: - Apply

    /// Validates every document, then creates or updates all of them in one transaction. If any document
    /// is invalid, nothing is stored and the failure lists every problem with its document index.
    public func apply(_ documents: [JSONValue], namespace: String) async throws -> [ApplyOutcome] {
        var objects: [AppliedObject] = []
        var details: [APIFailure.Detail] = []
        var seen: [String: Int] = [:]
        for (index, document) in documents.enumerated() {
            do {
                let object = try Manifest.decode(document, defaultNamespace: namespace)
                let id = "\(object.kind.rawValue)/\(object.metadata.namespace ?? namespace)/\(object.metadata.name)"
                if let first = seen[id] {
                    details.append(.init(document: index, object: "\(object.kind.rawValue)/\(object.metadata.name)", path: "metadata.name",
                                         message: "the same object is also defined in document \(first)"))
                }
                seen[id] = index
                objects.append(object)
            } catch {
                details += error.errors.map { .init(document: index, object: error.object, path: $0.path, message: $0.message) }
            }
        }
        guard details.isEmpty else {
            let count = details.count
            throw APIFailure(code: 422, message: "\(count) invalid field\(count == 1 ? "" : "s"); nothing was applied", details: details)
        }
        return try await withConflictRetry {
            var writes: [Write] = []
            var outcomes: [ApplyOutcome] = []
            var reservedIPs = Set<String>()
            let appliedConfigs = Self.configContents(of: objects, namespace: namespace)
            for object in objects {
                let (objectWrites, action) = try await prepare(object, reservedIPs: &reservedIPs, appliedConfigs: appliedConfigs)
                writes += objectWrites
                outcomes.append(ApplyOutcome(kind: object.kind.rawValue, namespace: object.metadata.namespace ?? namespace,
                                             name: object.metadata.name, action: action))
            }
            if !writes.isEmpty { try await store.commit(writes) }
            return outcomes
        }
    }

    private func prepare(_ object: AppliedObject, reservedIPs: inout Set<String>, appliedConfigs: [ObjectKey: [String: Data]]) async throws -> ([Write], String) {
        switch object {
        case .deployment(var deployment):
            // The digest of the configuration it uses as of this apply, so applying a ConfigMap together
            // with its deployment rolls once.
            let hash = try await configHash(deployment.spec.template.spec, namespace: deployment.namespace, applied: appliedConfigs)
            deployment.spec.template = ConfigRollout.annotated(deployment, hash: hash)
            let (write, action) = try await prepare(deployment) { new, old in
                new.status = old.status
                return new.spec != old.spec
            }
            return (write.map { [$0] } ?? [], action)
        case .service(var service):
            var addressWrites: [Write] = []
            if let serviceIPs {
                let existing = try await typed(Service.self, namespace: service.namespace, name: service.name)?.0
                addressWrites = try await serviceIPs.assign(&service, existing: existing, reserved: &reservedIPs, store: store)
            }
            let (write, action) = try await prepare(service) { new, old in new.spec != old.spec }
            return ((write.map { [$0] } ?? []) + addressWrites, action)
        case .authorizationPolicy(let policy):
            let (write, action) = try await prepare(policy) { new, old in new.spec != old.spec }
            return (write.map { [$0] } ?? [], action)
        case .peerAuthentication(let peerAuthentication):
            let (write, action) = try await prepare(peerAuthentication) { new, old in new.spec != old.spec }
            return (write.map { [$0] } ?? [], action)
        case .configMap(let configMap):
            let (write, action) = try await prepare(configMap) { new, old in new.data != old.data }
            return (write.map { [$0] } ?? [], action)
        case .secret(let secret):
            let (write, action) = try await prepare(secret) { new, old in new.data != old.data || new.type != old.type }
            return (write.map { [$0] } ?? [], action)
        }
    }

    /// Builds the write for one applied object. `merge` carries server-owned state over from the
    /// stored object and says whether the spec changed.
    private func prepare<T: Resource>(_ applied: T, merge: (inout T, T) -> Bool) async throws -> (Write?, String) {
        var object = applied
        let key = ResourceCodec.key(of: object)
        guard let stored = try await store.get(key) else {
            object.metadata.uid = UUID().uuidString.lowercased()
            object.metadata.creationTimestamp = ResourceCodec.timestamp()
            object.metadata.generation = 1
            return (.create(key, try ResourceCodec.encode(object)), "created")
        }
        let existing = try ResourceCodec.decode(T.self, from: stored)
        let specChanged = merge(&object, existing)
        object.metadata.uid = existing.metadata.uid
        object.metadata.creationTimestamp = existing.metadata.creationTimestamp
        object.metadata.generation = (existing.metadata.generation ?? 1) + (specChanged ? 1 : 0)
        object.metadata.resourceVersion = existing.metadata.resourceVersion
        if object == existing { return (nil, "unchanged") }
        return (.update(key, try ResourceCodec.encode(object), ifRevision: stored.revision), "configured")
    }

    // MARK: - Changes

    /// Deletes an object. Replicas are deleted gracefully: the first call marks them terminating and their
    /// agent removes them (`final`) once the process has stopped.
    public func delete(_ kind: ResourceKind, namespace: String, name: String, final: Bool = false) async throws -> JSONValue {
        let key = ResourceCodec.key(kind, namespace: namespace, name: name)
        if kind == .replica && !final {
            return try await update(Replica.self, namespace: namespace, name: name) { replica in
                Self.markTerminating(&replica)
            }
        }
        return try await withConflictRetry {
            guard let stored = try await store.get(key) else { throw APIFailure.notFound(kind, namespace: namespace, name: name) }
            var writes: [Write] = [.delete(key, ifRevision: stored.revision)]
            if kind == .service, let ip = try ResourceCodec.decode(Service.self, from: stored).spec.clusterIP,
               let reservation = try await store.get(ServiceIPAllocator.key(ip)) {
                writes.append(.delete(reservation.key, ifRevision: reservation.revision))
            }
            // A node's credential goes with it: deleting a node is how it is revoked.
            if kind == .node, let credential = try await store.get(NodeEnrollment.credentialKey(name)) {
                writes.append(.delete(credential.key, ifRevision: credential.revision))
            }
            try await store.commit(writes)
            return try ResourceCodec.json(stored)
        }
    }

    /// Sets a deployment's desired replica count.
    public func scale(namespace: String, name: String, replicas: Int) async throws -> JSONValue {
        guard (0...Validation.maxReplicas).contains(replicas) else {
            throw APIFailure(code: 422, message: "replicas: must be between 0 and \(Validation.maxReplicas)",
                             details: [.init(path: "replicas", message: "must be between 0 and \(Validation.maxReplicas)")])
        }
        return try await update(Deployment.self, namespace: namespace, name: name) { deployment in
            guard deployment.spec.replicas != replicas else { return false }
            deployment.spec.replicas = replicas
            deployment.metadata.generation = (deployment.metadata.generation ?? 1) + 1
            return true
        }
    }

    /// Records a rollout action (promote, abort, pause, resume, undo) in a deployment, compared and swapped
    /// with the stored object; the deployment controller acts on it. 404 for an unknown deployment, 409
    /// when the action does not fit the rollout's state, 422 for a bad argument.
    public func rollout(namespace: String, name: String, action: RolloutAction, now: Date = Date()) async throws -> JSONValue {
        try await update(Deployment.self, namespace: namespace, name: name) { deployment in
            let before = deployment
            do {
                try action.apply(to: &deployment, now: now)
            } catch let error as RolloutActionError {
                throw APIFailure(error)
            }
            return deployment != before
        }
    }

    /// Records the status an agent observed for a replica.
    public func updateReplicaStatus(namespace: String, name: String, status: ReplicaStatus) async throws -> JSONValue {
        try await update(Replica.self, namespace: namespace, name: name) { replica in
            var status = status
            if replica.isTerminating { status.phase = .terminating; status.ready = false }
            guard replica.status != status else { return false }
            replica.status = status
            return true
        }
    }

    /// Registers a node or renews its status (heartbeat). `status.lastHeartbeat` is set to `now` on the
    /// server's clock: the lease is judged against it, never against a node's clock.
    public func putNode(_ node: Node, now: Date = Date()) async throws -> JSONValue {
        let problems = Validation.validate(node)
        guard problems.isEmpty else {
            throw APIFailure(code: 422, message: "\(problems.count) invalid field\(problems.count == 1 ? "" : "s") in Node/\(node.name)",
                             details: problems.map { .init(path: $0.path, message: $0.message) })
        }
        let key = ResourceCodec.key(.node, namespace: "", name: node.name)
        return try await withConflictRetry {
            var object = node
            // Milliseconds: each heartbeat must differ from the last to renew the node's lease.
            object.status?.lastHeartbeat = now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            object.apiVersion = weftAPIVersion
            object.kind = ResourceKind.node.rawValue
            object.metadata.namespace = nil
            let write: Write
            if let stored = try await store.get(key) {
                let existing = try ResourceCodec.decode(Node.self, from: stored)
                object.metadata = existing.metadata
                if let labels = node.metadata.labels { object.metadata.labels = labels }
                // A heartbeat without a spec keeps the one stored (a cordon or taints set by someone else).
                if node.spec == nil { object.spec = existing.spec }
                write = .update(key, try ResourceCodec.encode(object), ifRevision: stored.revision)
            } else {
                object.metadata.uid = UUID().uuidString.lowercased()
                object.metadata.creationTimestamp = ResourceCodec.timestamp()
                write = .create(key, try ResourceCodec.encode(object))
            }
            let events = try await store.commit([write])
            return try ResourceCodec.json(events[0].object)
        }
    }

    /// Reads, changes and writes back one object with optimistic concurrency. `change` returns false when
    /// nothing needs writing.
    @discardableResult
    public func update<T: Resource>(_ type: T.Type, namespace: String, name: String, _ change: @Sendable (inout T) throws -> Bool) async throws -> JSONValue {
        let key = ResourceCodec.key(T.resourceKind, namespace: namespace, name: name)
        return try await withConflictRetry {
            guard let stored = try await store.get(key) else { throw APIFailure.notFound(T.resourceKind, namespace: namespace, name: name) }
            var object = try ResourceCodec.decode(T.self, from: stored)
            guard try change(&object) else { return try ResourceCodec.json(stored) }
            let events = try await store.commit([.update(key, try ResourceCodec.encode(object), ifRevision: stored.revision)])
            return try ResourceCodec.json(events[0].object)
        }
    }

    static func markTerminating(_ replica: inout Replica) -> Bool {
        guard replica.metadata.deletionTimestamp == nil else { return false }
        replica.metadata.deletionTimestamp = ResourceCodec.timestamp()
        var status = replica.status ?? ReplicaStatus(phase: .terminating)
        status.phase = .terminating
        status.ready = false
        replica.status = status
        return true
    }

    func withConflictRetry<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        for attempt in 1...Self.maxAttempts {
            do {
                return try await body()
            } catch let error as StoreError where error.code == .conflict || error.code == .alreadyExists {
                if attempt == Self.maxAttempts { throw APIFailure.conflict("the object changed concurrently; retry (\(error.message))") }
                logger.debug("retrying after a concurrent change", metadata: ["error": "\(error)"])
            }
        }
        throw APIFailure.conflict("the object changed concurrently; retry")
    }
}
