import Foundation
import WeftClient
import WeftCore
import WeftPKI

/// One volume of a replica as a directory on the node, and where the replica should see it.
public struct ReplicaVolume: Sendable, Equatable {
    public var name: String
    /// The directory on the node holding the volume's files (mode 0700).
    public var hostDirectory: String
    /// The template's `mountPath`, nil when no `volumeMounts` entry names the volume.
    public var mountPath: String?
    public var readOnly: Bool
}

/// The files of ConfigMap and Secret volumes, one directory per replica under
/// `<state-dir>/volumes/<namespace>/<replica>/<volume>`: directories 0700, Secret files 0600, ConfigMap
/// files 0644. They are written afresh before every start of the replica's process and removed when
/// the replica stops.
///
/// The process and netns drivers cannot mount a directory at `mountPath`: the replica finds each volume
/// through `WEFT_VOLUME_<NAME>` (the volume name upper-cased, `-` as `_`). A driver with its own mount
/// namespace (oci) bind-mounts each ``ReplicaVolume/hostDirectory`` at its ``ReplicaVolume/mountPath``.
public struct ConfigVolumes: Sendable {
    public let root: String

    public init(stateDirectory: String) {
        self.root = (stateDirectory as NSString).appendingPathComponent("volumes")
    }

    /// The directory of one replica's volumes.
    public func directory(namespace: String, replica: String) -> String {
        ((root as NSString).appendingPathComponent(namespace) as NSString).appendingPathComponent(replica)
    }

    /// The volumes of `replica` with their directories and mount paths, in template order.
    public func volumes(of replica: Replica) -> [ReplicaVolume] {
        let base = directory(namespace: replica.namespace, replica: replica.name)
        let mounts = replica.spec.template.volumeMounts ?? []
        return (replica.spec.template.volumes ?? []).map { volume in
            let mount = mounts.first { $0.name == volume.name }
            return ReplicaVolume(name: volume.name, hostDirectory: (base as NSString).appendingPathComponent(volume.name),
                                 mountPath: mount?.mountPath, readOnly: true)
        }
    }

    /// `WEFT_VOLUME_<NAME>` for each volume of `replica`.
    public func environment(of replica: Replica) -> [String: String] {
        var env: [String: String] = [:]
        for volume in volumes(of: replica) {
            env["WEFT_VOLUME_" + volume.name.uppercased().replacingOccurrences(of: "-", with: "_")] = volume.hostDirectory
        }
        return env
    }

    /// Writes every volume of `replica` from `config`, replacing what an earlier start left.
    func materialise(_ replica: Replica, config: ReplicaConfig) throws {
        let base = directory(namespace: replica.namespace, replica: replica.name)
        // Work out every file first: a missing key leaves nothing half written.
        var planned: [(ReplicaVolume, [ReplicaConfig.File], Bool)] = []
        for (volume, spec) in zip(volumes(of: replica), replica.spec.template.volumes ?? []) {
            planned.append((volume, try config.files(of: spec), spec.secret != nil))
        }
        try? FileManager.default.removeItem(atPath: base)
        guard !planned.isEmpty else { return }
        try SecureFile.createDirectory(base, mode: 0o700)
        for (volume, files, secret) in planned {
            try SecureFile.createDirectory(volume.hostDirectory, mode: 0o700)
            for file in files {
                let path = (volume.hostDirectory as NSString).appendingPathComponent(file.path)
                try SecureFile.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
                try SecureFile.write(file.contents, to: path, mode: secret ? 0o600 : 0o644)
            }
        }
    }

    /// Removes the files of one replica.
    func remove(namespace: String, replica: String) {
        try? FileManager.default.removeItem(atPath: directory(namespace: namespace, replica: replica))
    }

    /// Removes what a previous agent left (its replicas write theirs again when they start).
    func removeAll() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Reads the ConfigMaps and Secrets `workload` uses in `namespace` from the API.
    static func fetch(_ workload: WorkloadSpec, namespace: String, client: APIClient) async throws -> ReplicaConfig {
        let references = ConfigReferences(workload)
        var config = ReplicaConfig()
        for name in references.configMaps.keys.sorted() {
            let found = try await client.get(ConfigMap.self, namespace: namespace, name: name)
            config.configMaps.updateValue(found?.contents, forKey: name)
        }
        for name in references.secrets.keys.sorted() {
            let found = try await client.get(Secret.self, namespace: namespace, name: name)
            config.secrets.updateValue(found?.contents, forKey: name)
        }
        return config
    }
}
