/// One running instance of a deployment's template on a node. Made by the controller, run by the
/// node's agent; read-only to users (who may delete one to have it replaced).
public struct Replica: Resource {
    public static let resourceKind = ResourceKind.replica
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: ReplicaSpec
    public var status: ReplicaStatus?

    public init(metadata: ObjectMeta, spec: ReplicaSpec, status: ReplicaStatus? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// Whether a graceful delete has begun.
    public var isTerminating: Bool { metadata.deletionTimestamp != nil }
    public var isReady: Bool { !isTerminating && (status?.ready ?? false) }

    /// The service account the replica runs as: its template's `serviceAccountName`, else its deployment's name.
    public var serviceAccount: String { spec.template.serviceAccount(deployment: spec.deployment) }

    /// The replica's identity in the mesh, as AuthorizationPolicies see it.
    public var principal: SourcePrincipal { SourcePrincipal(namespace: namespace, serviceAccount: serviceAccount) }
}

public struct ReplicaSpec: Codable, Sendable, Hashable {
    public var deployment: String
    public var node: String
    public var templateHash: String
    public var template: WorkloadSpec

    public init(deployment: String, node: String, templateHash: String, template: WorkloadSpec) {
        self.deployment = deployment
        self.node = node
        self.templateHash = templateHash
        self.template = template
    }
}

/// Lifecycle phase of a replica.
public enum ReplicaPhase: String, Codable, Sendable, CaseIterable {
    /// Accepted, not started yet.
    case pending = "Pending"
    /// Process started; its readiness probe has no verdict yet.
    case starting = "Starting"
    /// Running but not ready: the readiness probe failed `failureThreshold` times in a row.
    case running = "Running"
    /// Running and passing readiness: receives traffic.
    case ready = "Ready"
    /// Crash-looping: waiting out a restart backoff.
    case failing = "Failing"
    /// Being stopped.
    case terminating = "Terminating"
}

public struct ReplicaStatus: Codable, Sendable, Hashable {
    public var phase: ReplicaPhase
    public var ready: Bool
    /// The IP the replica's ports are reachable at.
    public var address: String?
    /// Allocated port per declared port name.
    public var ports: [String: Int]?
    public var restarts: Int
    /// E.g. `exit 1` or `signal 9 (SIGKILL)`.
    public var lastExitStatus: String?
    /// Why the last incarnation ended when the node knows more than its exit status: `OOMKilled` (its
    /// cgroup's memory limit was hit) or `Error`/`Completed` (as Kubernetes names them). Set by the oci driver.
    public var lastExitReason: String?
    /// Why the replica is in its phase, for `weft describe`.
    public var message: String?
    public var pid: Int?
    public var startedAt: String?

    public init(phase: ReplicaPhase, ready: Bool = false, address: String? = nil, ports: [String: Int]? = nil,
                restarts: Int = 0, lastExitStatus: String? = nil, message: String? = nil, pid: Int? = nil, startedAt: String? = nil) {
        self.phase = phase
        self.ready = ready
        self.address = address
        self.ports = ports
        self.restarts = restarts
        self.lastExitStatus = lastExitStatus
        self.message = message
        self.pid = pid
        self.startedAt = startedAt
    }
}
