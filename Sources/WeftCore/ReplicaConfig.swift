import Foundation

/// The ConfigMaps and Secrets a replica uses, as read for one start, and what the replica gets from
/// them: environment variables and the files of each volume. Pure; the agent reads the objects.
public struct ReplicaConfig: Sendable {
    /// Contents by name; a name mapped to nil was looked up and does not exist.
    public var configMaps: [String: [String: Data]?]
    public var secrets: [String: [String: Data]?]

    public init(configMaps: [String: [String: Data]?] = [:], secrets: [String: [String: Data]?] = [:]) {
        self.configMaps = configMaps
        self.secrets = secrets
    }

    /// Why a replica cannot start yet: a required object or key is missing. It stays Pending with this
    /// as its reason until the object appears.
    public struct Unavailable: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// One file of a volume: its path relative to the volume's directory and its bytes.
    public struct File: Sendable, Equatable {
        public var path: String
        public var contents: Data
    }

    private func contents(secret: Bool, _ name: String, optional: Bool?) throws(Unavailable) -> [String: Data]? {
        let table = secret ? secrets : configMaps
        if let found = table[name] ?? nil { return found }
        if optional == true { return nil }
        throw Unavailable("\(secret ? "secret" : "configmap") \"\(name)\" not found")
    }

    /// The variables from `envFrom` (in order) and `env[].valueFrom`; literal `env` values are the
    /// caller's. A later entry wins over an earlier one, and `env` over `envFrom`, as in Kubernetes.
    /// Keys of an `envFrom` object that are no valid variable names are skipped.
    public func environment(for workload: WorkloadSpec) throws(Unavailable) -> [String: String] {
        var env: [String: String] = [:]
        for source in workload.envFrom ?? [] {
            let secret = source.secretRef != nil
            guard let ref = source.secretRef ?? source.configMapRef,
                  let values = try contents(secret: secret, ref.name, optional: ref.optional) else { continue }
            for (key, value) in values {
                let name = (source.prefix ?? "") + key
                if Validation.isEnvName(name) { env[name] = String(decoding: value, as: UTF8.self) }
            }
        }
        for variable in workload.env ?? [] {
            guard let source = variable.valueFrom else { continue }
            let secret = source.secretKeyRef != nil
            guard let ref = source.secretKeyRef ?? source.configMapKeyRef else { continue }
            guard let values = try contents(secret: secret, ref.name, optional: ref.optional) else { continue }
            if let value = values[ref.key] {
                env[variable.name] = String(decoding: value, as: UTF8.self)
            } else if ref.optional != true {
                throw Unavailable("key \"\(ref.key)\" not found in \(secret ? "secret" : "configmap") \"\(ref.name)\" (for variable \(variable.name))")
            }
        }
        return env
    }

    /// The files of `volume`: every key under its own name, or the listed `items`. An optional volume
    /// whose object is missing is an empty directory.
    public func files(of volume: Volume) throws(Unavailable) -> [File] {
        let secret = volume.secret != nil
        let name = volume.secret?.resolvedName ?? volume.configMap?.name ?? ""
        let optional = volume.secret?.optional ?? volume.configMap?.optional
        let items = volume.secret?.items ?? volume.configMap?.items
        guard let values = try contents(secret: secret, name, optional: optional) else { return [] }
        guard let items else {
            return values.sorted { $0.key < $1.key }.map { File(path: $0.key, contents: $0.value) }
        }
        var files: [File] = []
        for item in items {
            guard let value = values[item.key] else {
                if optional == true { continue }
                throw Unavailable("key \"\(item.key)\" not found in \(secret ? "secret" : "configmap") \"\(name)\" (for volume \(volume.name))")
            }
            files.append(File(path: item.path, contents: value))
        }
        return files
    }
}
