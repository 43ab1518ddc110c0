/// Desired state of a replicated workload: how many replicas of which template.
public struct Deployment: Resource {
    public static let resourceKind = ResourceKind.deployment
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: DeploymentSpec
    public var status: DeploymentStatus?

    public init(metadata: ObjectMeta, spec: DeploymentSpec, status: DeploymentStatus? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct DeploymentSpec: Codable, Sendable, Hashable {
    /// Desired number of replicas (default 1).
    public var replicas: Int?
    /// Must match the template's labels when given; defaults to them.
    public var selector: LabelSelector?
    public var template: ReplicaTemplate
    public var strategy: DeploymentStrategy?

    public init(replicas: Int? = nil, selector: LabelSelector? = nil, template: ReplicaTemplate, strategy: DeploymentStrategy? = nil) {
        self.replicas = replicas
        self.selector = selector
        self.template = template
        self.strategy = strategy
    }

    public var desiredReplicas: Int { replicas ?? 1 }
}

extension Deployment {
    /// The service account its replicas run as: the template's `serviceAccountName`, else the deployment's name.
    public var serviceAccount: String { spec.template.spec.serviceAccount(deployment: name) }
}

/// How replicas of an old template are replaced by the new one.
public struct DeploymentStrategy: Codable, Sendable, Hashable {
    /// `RollingUpdate` (default), `Recreate` or `Canary`.
    public var type: String?
    public var rollingUpdate: RollingUpdateStrategy?
    public var canary: CanaryStrategy?

    public init(type: String? = nil, rollingUpdate: RollingUpdateStrategy? = nil, canary: CanaryStrategy? = nil) {
        self.type = type
        self.rollingUpdate = rollingUpdate
        self.canary = canary
    }

    /// `type`, or `Canary` when only `canary` is given, else `RollingUpdate`.
    public var resolvedType: String { type ?? (canary != nil ? "Canary" : "RollingUpdate") }
}

/// Bounds of a rolling update, as a count (`1`) or a share of the replicas (`"25%"`).
public struct RollingUpdateStrategy: Codable, Sendable, Hashable {
    public var maxSurge: PortReference?
    public var maxUnavailable: PortReference?

    public init(maxSurge: PortReference? = nil, maxUnavailable: PortReference? = nil) {
        self.maxSurge = maxSurge
        self.maxUnavailable = maxUnavailable
    }
}

public struct ReplicaTemplate: Codable, Sendable, Hashable {
    public var metadata: TemplateMetadata?
    public var spec: WorkloadSpec

    public init(metadata: TemplateMetadata? = nil, spec: WorkloadSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct TemplateMetadata: Codable, Sendable, Hashable {
    public var labels: [String: String]?
    public var annotations: [String: String]?

    public init(labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.labels = labels
        self.annotations = annotations
    }
}

/// What one replica runs: a process with its arguments, environment, ports, probes and resources.
public struct WorkloadSpec: Codable, Sendable, Hashable {
    /// The program and its leading arguments. Required, except with `runtime: oci` and an `image`, whose
    /// entrypoint it then overrides (Kubernetes semantics).
    public var command: [String]?
    /// Arguments after `command`; with an image and no `command`, they replace the image's `Cmd`.
    public var args: [String]?
    public var env: [EnvVar]?
    public var workingDir: String?
    public var ports: [ContainerPort]?
    public var readinessProbe: Probe?
    public var livenessProbe: Probe?
    public var resources: ResourceRequirements?
    /// Seconds between SIGTERM and SIGKILL when the replica stops (default 30).
    public var terminationGracePeriodSeconds: Int?
    /// Labels a node must have to run the replica.
    public var nodeSelector: [String: String]?
    /// Taints of nodes the replica may run on anyway.
    public var tolerations: [Toleration]?
    /// The identity the replica's streams carry in the mesh (`spiffe://<domain>/ns/<ns>/sa/<name>`),
    /// which AuthorizationPolicies name; the deployment's name when absent.
    public var serviceAccountName: String?
    /// How the node runs the replica: `process` (on the node's network, a host port per declared port) or
    /// `netns` (its own network namespace and IP from the node's pod CIDR); the node's default when absent.
    public var runtime: String?
    /// Every key of a ConfigMap or Secret as environment variables.
    public var envFrom: [EnvFromSource]?
    /// ConfigMaps and Secrets materialised as directories of files, one file per key.
    public var volumes: [Volume]?
    /// Where the replica sees each volume.
    public var volumeMounts: [VolumeMount]?
    /// `runtime: oci`: an image imported on the node with `weft image import`, `NAME[:TAG]` (tag `latest`).
    public var image: String?
    /// `runtime: oci`: an absolute path on the node to a root filesystem directory, instead of `image`.
    public var rootfs: String?
    /// `runtime: oci`: the user and group the replica's process runs as.
    public var securityContext: SecurityContext?

    public init(command: [String]?, args: [String]? = nil, env: [EnvVar]? = nil, workingDir: String? = nil,
                ports: [ContainerPort]? = nil, readinessProbe: Probe? = nil, livenessProbe: Probe? = nil,
                resources: ResourceRequirements? = nil, terminationGracePeriodSeconds: Int? = nil,
                nodeSelector: [String: String]? = nil, tolerations: [Toleration]? = nil, serviceAccountName: String? = nil,
                runtime: String? = nil, envFrom: [EnvFromSource]? = nil, volumes: [Volume]? = nil, volumeMounts: [VolumeMount]? = nil,
                image: String? = nil, rootfs: String? = nil, securityContext: SecurityContext? = nil) {
        self.envFrom = envFrom
        self.volumes = volumes
        self.volumeMounts = volumeMounts
        self.command = command
        self.args = args
        self.env = env
        self.workingDir = workingDir
        self.ports = ports
        self.readinessProbe = readinessProbe
        self.livenessProbe = livenessProbe
        self.resources = resources
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
        self.nodeSelector = nodeSelector
        self.tolerations = tolerations
        self.serviceAccountName = serviceAccountName
        self.runtime = runtime
        self.image = image
        self.rootfs = rootfs
        self.securityContext = securityContext
    }

    public var gracePeriodSeconds: Int { terminationGracePeriodSeconds ?? 30 }

    /// `serviceAccountName`, or `deployment` (the name of the deployment the template belongs to).
    public func serviceAccount(deployment: String) -> String { serviceAccountName ?? deployment }
}

/// Who a container's process runs as (`runtime: oci`); the image's `User`, else root, when absent.
public struct SecurityContext: Codable, Sendable, Hashable {
    public var runAsUser: Int?
    public var runAsGroup: Int?

    public init(runAsUser: Int? = nil, runAsGroup: Int? = nil) {
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
    }
}

/// One environment variable: a literal `value`, or `valueFrom` a key of a ConfigMap or Secret.
public struct EnvVar: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?
    public var valueFrom: EnvVarSource?

    public init(name: String, value: String?, valueFrom: EnvVarSource? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }
}

/// A named port of a replica. The process driver gives each one a free host port, unless `hostPort`
/// fixes it.
public struct ContainerPort: Codable, Sendable, Hashable {
    public var name: String
    /// The port inside the replica's own network (used by the netns and OCI drivers).
    public var containerPort: Int?
    /// `TCP` (default) or `UDP`.
    public var `protocol`: String?
    /// A fixed port on the node's network. The scheduler puts at most one replica holding it on a node.
    public var hostPort: Int?

    public init(name: String, containerPort: Int? = nil, protocol: String? = nil, hostPort: Int? = nil) {
        self.name = name
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostPort = hostPort
    }
}

/// A health check: exactly one of `httpGet`, `tcpSocket`, `exec`.
public struct Probe: Codable, Sendable, Hashable {
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var exec: ExecAction?
    public var initialDelaySeconds: Int?
    public var periodSeconds: Int?
    public var timeoutSeconds: Int?
    public var successThreshold: Int?
    public var failureThreshold: Int?

    public init(httpGet: HTTPGetAction? = nil, tcpSocket: TCPSocketAction? = nil, exec: ExecAction? = nil,
                initialDelaySeconds: Int? = nil, periodSeconds: Int? = nil, timeoutSeconds: Int? = nil,
                successThreshold: Int? = nil, failureThreshold: Int? = nil) {
        self.httpGet = httpGet
        self.tcpSocket = tcpSocket
        self.exec = exec
        self.initialDelaySeconds = initialDelaySeconds
        self.periodSeconds = periodSeconds
        self.timeoutSeconds = timeoutSeconds
        self.successThreshold = successThreshold
        self.failureThreshold = failureThreshold
    }

    public var initialDelay: Int { initialDelaySeconds ?? 0 }
    /// Default 2 s: shorter than Kubernetes' 10 s, because endpoints should follow readiness quickly.
    public var period: Int { periodSeconds ?? 2 }
    public var timeout: Int { timeoutSeconds ?? 1 }
    public var successes: Int { successThreshold ?? 1 }
    public var failures: Int { failureThreshold ?? 3 }
}

public struct HTTPGetAction: Codable, Sendable, Hashable {
    public var path: String?
    public var port: PortReference

    public init(path: String? = nil, port: PortReference) {
        self.path = path
        self.port = port
    }
}

public struct TCPSocketAction: Codable, Sendable, Hashable {
    public var port: PortReference

    public init(port: PortReference) { self.port = port }
}

public struct ExecAction: Codable, Sendable, Hashable {
    public var command: [String]

    public init(command: [String]) { self.command = command }
}

public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var requests: ResourceList?
    public var limits: ResourceList?

    public init(requests: ResourceList? = nil, limits: ResourceList? = nil) {
        self.requests = requests
        self.limits = limits
    }
}

/// CPU (`500m`, `2`) and memory (`64Mi`, `1G`) quantities, Kubernetes notation.
public struct ResourceList: Codable, Sendable, Hashable {
    public var cpu: String?
    public var memory: String?

    public init(cpu: String? = nil, memory: String? = nil) {
        self.cpu = cpu
        self.memory = memory
    }
}

/// Observed state of a deployment, kept by the controller.
public struct DeploymentStatus: Codable, Sendable, Hashable {
    public var observedGeneration: Int?
    public var replicas: Int
    public var updatedReplicas: Int
    public var readyReplicas: Int
    /// The canary or rolling update under way, or the last one's outcome.
    public var rollout: RolloutStatus?
    /// What happened to rollouts, newest last (at most `RolloutEvent.limit`).
    public var events: [RolloutEvent]?
    /// Templates this deployment has run, oldest first (at most `RevisionRecord.limit`).
    public var history: [RevisionRecord]?

    public init(observedGeneration: Int? = nil, replicas: Int = 0, updatedReplicas: Int = 0, readyReplicas: Int = 0,
                rollout: RolloutStatus? = nil, events: [RolloutEvent]? = nil, history: [RevisionRecord]? = nil) {
        self.observedGeneration = observedGeneration
        self.replicas = replicas
        self.updatedReplicas = updatedReplicas
        self.readyReplicas = readyReplicas
        self.rollout = rollout
        self.events = events
        self.history = history
    }
}
