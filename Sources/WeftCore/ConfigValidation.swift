import Foundation

extension Validation {
    /// The most bytes a ConfigMap's or Secret's values may hold together (as in Kubernetes).
    public static let maxConfigBytes = 1024 * 1024

    public static func validate(_ configMap: ConfigMap) -> [FieldError] {
        var errors = validateCommon(apiVersion: configMap.apiVersion, metadata: configMap.metadata, nameRule: .plain)
        var total = 0
        for (key, value) in (configMap.data ?? [:]).sorted(by: { $0.key < $1.key }) {
            let path = FieldPath() / "data" / key
            if let problem = configKeyProblem(key) { errors.append(path.error(problem)) }
            total += value.utf8.count
        }
        if total > maxConfigBytes {
            errors.append((FieldPath() / "data").error("holds \(total) bytes, more than the limit of \(maxConfigBytes) (1 MiB); split it into several ConfigMaps"))
        }
        return errors
    }

    public static func validate(_ secret: Secret) -> [FieldError] {
        var errors = validateCommon(apiVersion: secret.apiVersion, metadata: secret.metadata, nameRule: .plain)
        if let type = secret.type, type.isEmpty || type.count > 253 || type.contains(where: \.isWhitespace) {
            errors.append((FieldPath() / "type").error("\"\(type)\" is not a secret type: leave it out (Opaque) or give a word without spaces"))
        }
        var total = 0
        for (key, value) in (secret.data ?? [:]).sorted(by: { $0.key < $1.key }) {
            let path = FieldPath() / "data" / key
            if let problem = configKeyProblem(key) { errors.append(path.error(problem)) }
            // The message never quotes the value: it is a secret.
            if let bytes = Data(base64Encoded: value) {
                if secret.stringData?[key] == nil { total += bytes.count }
            } else {
                errors.append(path.error("not valid base64; encode the value (base64 -w0) or give it in plain text under stringData"))
            }
        }
        for (key, value) in (secret.stringData ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let problem = configKeyProblem(key) { errors.append((FieldPath() / "stringData" / key).error(problem)) }
            total += value.utf8.count
        }
        if total > maxConfigBytes {
            errors.append((FieldPath() / "data").error("holds \(total) bytes, more than the limit of \(maxConfigBytes) (1 MiB); split it into several Secrets"))
        }
        return errors
    }

    /// Keys become file names and environment variable names: `[-._a-zA-Z0-9]+`, not `.` or `..`.
    public static func configKeyProblem(_ key: String) -> String? {
        let allowed = key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
        if key.isEmpty || key.count > 253 || !allowed || key == "." || key == ".." {
            return "\"\(key)\" is not a valid key: use 1 to 253 letters, digits, '-', '_' and '.' (it becomes a file name)"
        }
        return nil
    }

    /// `env[].valueFrom`, `envFrom`, `volumes` and `volumeMounts` of a workload.
    static func validateConfigUse(_ workload: WorkloadSpec, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        for (i, variable) in (workload.env ?? []).enumerated() {
            let varPath = (path / "env")[i]
            guard let source = variable.valueFrom else { continue }
            if variable.value != nil {
                errors.append(varPath.error("sets both value and valueFrom; keep one"))
            }
            let refs = [("configMapKeyRef", source.configMapKeyRef), ("secretKeyRef", source.secretKeyRef)].compactMap { field, ref in ref.map { (field, $0) } }
            guard refs.count == 1, let (field, ref) = refs.first else {
                errors.append((varPath / "valueFrom").error("must set exactly one of configMapKeyRef or secretKeyRef (\(refs.count) set)"))
                continue
            }
            let refPath = varPath / "valueFrom" / field
            if let problem = dnsLabelProblem(ref.name) { errors.append((refPath / "name").error(problem)) }
            if let problem = configKeyProblem(ref.key) { errors.append((refPath / "key").error(problem)) }
        }
        for (i, source) in (workload.envFrom ?? []).enumerated() {
            let sourcePath = (path / "envFrom")[i]
            let refs = [("configMapRef", source.configMapRef), ("secretRef", source.secretRef)].compactMap { field, ref in ref.map { (field, $0) } }
            guard refs.count == 1, let (field, ref) = refs.first else {
                errors.append(sourcePath.error("must set exactly one of configMapRef or secretRef (\(refs.count) set)"))
                continue
            }
            if let problem = dnsLabelProblem(ref.name) { errors.append((sourcePath / field / "name").error(problem)) }
            if let prefix = source.prefix, !prefix.isEmpty, !isEnvName(prefix) {
                errors.append((sourcePath / "prefix").error("\"\(prefix)\" is not a valid start of a variable name (letters, digits, _; not starting with a digit)"))
            }
        }
        var volumeNames = Set<String>()
        for (i, volume) in (workload.volumes ?? []).enumerated() {
            let volumePath = (path / "volumes")[i]
            if let problem = dnsLabelProblem(volume.name) {
                errors.append((volumePath / "name").error(problem))
            } else if !volumeNames.insert(volume.name).inserted {
                errors.append((volumePath / "name").error("duplicate volume name \"\(volume.name)\""))
            }
            switch (volume.configMap, volume.secret) {
            case (let source?, nil):
                if let problem = dnsLabelProblem(source.name) { errors.append((volumePath / "configMap" / "name").error(problem)) }
                errors += validateItems(source.items, at: volumePath / "configMap" / "items")
            case (nil, let source?):
                let secretPath = volumePath / "secret"
                if let given = source.secretName, let other = source.name, given != other {
                    errors.append((secretPath / "name").error("differs from secretName \"\(given)\"; give one of them"))
                } else if source.secretName == nil && source.name == nil {
                    errors.append((secretPath / "secretName").error("is required: the name of the Secret"))
                } else if let problem = dnsLabelProblem(source.resolvedName) {
                    errors.append((secretPath / (source.secretName != nil ? "secretName" : "name")).error(problem))
                }
                errors += validateItems(source.items, at: secretPath / "items")
            default:
                let count = (volume.configMap == nil ? 0 : 1) + (volume.secret == nil ? 0 : 1)
                errors.append(volumePath.error("must set exactly one of configMap or secret (\(count) set)"))
            }
        }
        var mountPaths = Set<String>()
        for (i, mount) in (workload.volumeMounts ?? []).enumerated() {
            let mountPath = (path / "volumeMounts")[i]
            if !volumeNames.contains(mount.name) {
                let known = (workload.volumes ?? []).map(\.name)
                errors.append((mountPath / "name").error("names no volume \"\(mount.name)\"" + (known.isEmpty ? "; declare it under volumes" : " (volumes: \(known.joined(separator: ", ")))")))
            }
            if !mount.mountPath.hasPrefix("/") || mount.mountPath.split(separator: "/").contains("..") {
                errors.append((mountPath / "mountPath").error("must be an absolute path without '..', got \"\(mount.mountPath)\""))
            } else if mount.mountPath == "/" {
                errors.append((mountPath / "mountPath").error("must not be /"))
            } else if !mountPaths.insert(mount.mountPath).inserted {
                errors.append((mountPath / "mountPath").error("duplicate mount path \(mount.mountPath)"))
            }
            if mount.readOnly == false {
                errors.append((mountPath / "readOnly").error("ConfigMap and Secret volumes are read-only; leave readOnly out or set it to true"))
            }
        }
        return errors
    }

    static func validateItems(_ items: [KeyToPath]?, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        var paths = Set<String>()
        for (i, item) in (items ?? []).enumerated() {
            if let problem = configKeyProblem(item.key) { errors.append((path[i] / "key").error(problem)) }
            let parts = item.path.split(separator: "/", omittingEmptySubsequences: false)
            if item.path.isEmpty || item.path.hasPrefix("/") || parts.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." }) {
                errors.append((path[i] / "path").error("must be a relative file path without '..' or empty parts, got \"\(item.path)\""))
            } else if !paths.insert(item.path).inserted {
                errors.append((path[i] / "path").error("duplicate path \(item.path)"))
            }
        }
        return errors
    }
}
