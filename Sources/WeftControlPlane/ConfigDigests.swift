import Foundation
import WeftCore
import WeftPKI
import WeftStore

/// The digests of ConfigMap and Secret contents that ``ConfigRollout`` puts into deployment templates.
extension Registry {
    /// The contents of the ConfigMaps and Secrets in an apply batch, by store key.
    static func configContents(of objects: [AppliedObject], namespace: String) -> [ObjectKey: [String: Data]] {
        var out: [ObjectKey: [String: Data]] = [:]
        for object in objects {
            let objectNamespace = object.metadata.namespace ?? namespace
            switch object {
            case .configMap(let configMap):
                out[ResourceCodec.key(.configMap, namespace: objectNamespace, name: configMap.name)] = configMap.contents
            case .secret(let secret):
                out[ResourceCodec.key(.secret, namespace: objectNamespace, name: secret.name)] = secret.contents
            default:
                break
            }
        }
        return out
    }

    /// A digest of `contents`: keyed with the secrets key when there is one, so a digest of a Secret in a
    /// deployment's template tells nothing about its values.
    func digest(_ contents: [String: Data]) -> String {
        var bytes = Data()
        for (key, value) in contents.sorted(by: { $0.key < $1.key }) {
            // Key, length and value: no two different maps give the same bytes.
            bytes.append(contentsOf: Array(key.utf8))
            bytes.append(0)
            bytes.append(contentsOf: Array(String(value.count).utf8))
            bytes.append(0)
            bytes.append(value)
        }
        return secretsKey?.digest(bytes) ?? TemplateHash.fnv(Array(bytes))
    }

    /// The ``ConfigRollout`` hash of the objects `workload` refers to in `namespace`, reading each from
    /// `applied` when the same apply writes it, else from the store. Nil when it refers to none.
    func configHash(_ workload: WorkloadSpec, namespace: String, applied: [ObjectKey: [String: Data]] = [:]) async throws -> String? {
        let references = ConfigReferences(workload)
        guard !references.isEmpty else { return nil }
        var digests: [String: String?] = [:]
        for (kind, names) in [(ResourceKind.configMap, references.configMaps.keys), (ResourceKind.secret, references.secrets.keys)] {
            for name in names {
                let key = ResourceCodec.key(kind, namespace: namespace, name: name)
                var contents = applied[key]
                if contents == nil, let stored = try await store.get(key) {
                    if kind == .configMap {
                        contents = try ResourceCodec.decode(ConfigMap.self, from: stored).contents
                    } else {
                        contents = try ResourceCodec.decode(Secret.self, from: stored).contents
                    }
                }
                digests["\(kind.rawValue)/\(name)"] = contents.map(digest)
            }
        }
        return ConfigRollout.hash(references, digests: digests)
    }
}
