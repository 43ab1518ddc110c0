/// Where an environment variable's value comes from: exactly one of the two.
public struct EnvVarSource: Codable, Sendable, Hashable {
    public var configMapKeyRef: KeySelector?
    public var secretKeyRef: KeySelector?

    public init(configMapKeyRef: KeySelector? = nil, secretKeyRef: KeySelector? = nil) {
        self.configMapKeyRef = configMapKeyRef
        self.secretKeyRef = secretKeyRef
    }
}

/// One key of a ConfigMap or Secret in the replica's namespace.
public struct KeySelector: Codable, Sendable, Hashable {
    public var name: String
    public var key: String
    /// When true, a missing object or key leaves the variable unset instead of holding the replica Pending.
    public var optional: Bool?

    public init(name: String, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

/// All keys of a ConfigMap or Secret as environment variables (exactly one of the two refs).
public struct EnvFromSource: Codable, Sendable, Hashable {
    /// Put before each key to make the variable's name.
    public var prefix: String?
    public var configMapRef: ObjectReference?
    public var secretRef: ObjectReference?

    public init(prefix: String? = nil, configMapRef: ObjectReference? = nil, secretRef: ObjectReference? = nil) {
        self.prefix = prefix
        self.configMapRef = configMapRef
        self.secretRef = secretRef
    }
}

/// A ConfigMap or Secret named in the replica's namespace.
public struct ObjectReference: Codable, Sendable, Hashable {
    public var name: String
    public var optional: Bool?

    public init(name: String, optional: Bool? = nil) {
        self.name = name
        self.optional = optional
    }
}

/// A directory of files made from a ConfigMap or a Secret (exactly one of the two).
public struct Volume: Codable, Sendable, Hashable {
    public var name: String
    public var configMap: ConfigMapVolumeSource?
    public var secret: SecretVolumeSource?

    public init(name: String, configMap: ConfigMapVolumeSource? = nil, secret: SecretVolumeSource? = nil) {
        self.name = name
        self.configMap = configMap
        self.secret = secret
    }
}

public struct ConfigMapVolumeSource: Codable, Sendable, Hashable {
    public var name: String
    /// Which keys become files, and their file names; every key under its own name when absent.
    public var items: [KeyToPath]?
    public var optional: Bool?

    public init(name: String, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.name = name
        self.items = items
        self.optional = optional
    }
}

/// A secret volume, `secretName` as in Kubernetes (`name` is accepted too).
public struct SecretVolumeSource: Codable, Sendable, Hashable {
    public var secretName: String?
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?

    public init(secretName: String, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.secretName = secretName
        self.items = items
        self.optional = optional
    }

    /// `secretName`, else `name` ("" when neither is set; validation refuses that).
    public var resolvedName: String { secretName ?? name ?? "" }
}

/// One key as a file at `path`, relative to the volume's directory.
public struct KeyToPath: Codable, Sendable, Hashable {
    public var key: String
    public var path: String

    public init(key: String, path: String) {
        self.key = key
        self.path = path
    }
}

/// Where a volume appears in the replica.
public struct VolumeMount: Codable, Sendable, Hashable {
    public var name: String
    public var mountPath: String
    /// Config volumes are always read-only to the replica; the field is kept for Kubernetes manifests.
    public var readOnly: Bool?

    public init(name: String, mountPath: String, readOnly: Bool? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
    }
}

/// The ConfigMaps and Secrets a workload refers to, and whether it needs each one to start.
public struct ConfigReferences: Sendable, Hashable {
    /// Name → required (true when any use of it is not optional).
    public var configMaps: [String: Bool] = [:]
    public var secrets: [String: Bool] = [:]

    public init(_ workload: WorkloadSpec) {
        for variable in workload.env ?? [] {
            if let ref = variable.valueFrom?.configMapKeyRef { Self.add(&configMaps, ref.name, ref.optional) }
            if let ref = variable.valueFrom?.secretKeyRef { Self.add(&secrets, ref.name, ref.optional) }
        }
        for source in workload.envFrom ?? [] {
            if let ref = source.configMapRef { Self.add(&configMaps, ref.name, ref.optional) }
            if let ref = source.secretRef { Self.add(&secrets, ref.name, ref.optional) }
        }
        for volume in workload.volumes ?? [] {
            if let source = volume.configMap { Self.add(&configMaps, source.name, source.optional) }
            if let source = volume.secret { Self.add(&secrets, source.resolvedName, source.optional) }
        }
    }

    public var isEmpty: Bool { configMaps.isEmpty && secrets.isEmpty }

    private static func add(_ table: inout [String: Bool], _ name: String, _ optional: Bool?) {
        table[name] = (table[name] ?? false) || optional != true
    }
}
