/// The rules a manifest must satisfy before anything is stored. Every problem is reported with its
/// field path; validation never stops at the first error.
public enum Validation {
    public static let maxReplicas = 1000
    /// Replica names are `<deployment>-<10-char hash>-<5-char suffix>` and must stay a 63-char DNS label.
    static let maxDeploymentNameLength = 46

    public static func validate(_ deployment: Deployment) -> [FieldError] {
        var errors = validateCommon(apiVersion: deployment.apiVersion, metadata: deployment.metadata, nameRule: .deployment)
        let spec = FieldPath() / "spec"
        if let replicas = deployment.spec.replicas, !(0...maxReplicas).contains(replicas) {
            errors.append((spec / "replicas").error("must be between 0 and \(maxReplicas)"))
        }
        let templateLabels = deployment.spec.template.metadata?.labels ?? [:]
        errors += validateLabels(templateLabels, at: spec / "template" / "metadata" / "labels")
        if let selector = deployment.spec.selector {
            let path = spec / "selector" / "matchLabels"
            let match = selector.matchLabels ?? [:]
            if match.isEmpty {
                errors.append(path.error("must not be empty; list the template labels that identify this deployment's replicas"))
            }
            errors += validateLabels(match, at: path)
            for (key, value) in match.sorted(by: { $0.key < $1.key }) where templateLabels[key] != value {
                errors.append(path.error("\(key)=\(value) does not match spec.template.metadata.labels; the selector must select the template's own labels"))
            }
        }
        if let strategy = deployment.spec.strategy {
            errors += validateStrategy(strategy, at: spec / "strategy")
        }
        errors += validateWorkload(deployment.spec.template.spec, at: spec / "template" / "spec")
        return errors
    }

    public static func validate(_ service: Service) -> [FieldError] {
        var errors = validateCommon(apiVersion: service.apiVersion, metadata: service.metadata, nameRule: .service)
        let spec = FieldPath() / "spec"
        if let type = service.spec.type, ServiceType(rawValue: type) == nil {
            errors.append((spec / "type").error("must be VIP or Headless, got \"\(type)\""))
        }
        let selector = service.spec.selector ?? [:]
        if selector.isEmpty {
            errors.append((spec / "selector").error("is required: the labels of the replicas this service sends traffic to"))
        }
        errors += validateLabels(selector, at: spec / "selector")
        if let ip = service.spec.clusterIP, !IPAddressText.isValid(ip) {
            errors.append((spec / "clusterIP").error("must be an IPv4 or IPv6 address, got \"\(ip)\"; omit it to have one assigned"))
        }
        let ports = spec / "ports"
        if service.spec.ports.isEmpty {
            errors.append(ports.error("must list at least one port"))
        }
        var seenNames = Set<String>()
        var seenPorts = Set<String>()
        for (i, port) in service.spec.ports.enumerated() {
            let path = ports[i]
            if let name = port.name {
                if let problem = portNameProblem(name) { errors.append((path / "name").error(problem)) }
                if !seenNames.insert(name).inserted { errors.append((path / "name").error("duplicate port name \"\(name)\"")) }
            } else if service.spec.ports.count > 1 {
                errors.append((path / "name").error("is required when a service has more than one port"))
            }
            if !(1...65535).contains(port.port) {
                errors.append((path / "port").error("must be between 1 and 65535"))
            }
            let proto = port.protocol ?? "TCP"
            if !["TCP", "UDP"].contains(proto) {
                errors.append((path / "protocol").error("must be TCP or UDP, got \"\(proto)\""))
            }
            if !seenPorts.insert("\(port.port)/\(proto)").inserted {
                errors.append((path / "port").error("duplicate port \(port.port)/\(proto)"))
            }
            if let target = port.targetPort {
                errors += validatePortReference(target, at: path / "targetPort", declared: nil)
            }
            if let app = port.appProtocol {
                if !["http", "tcp"].contains(app.lowercased()) {
                    errors.append((path / "appProtocol").error("must be http or tcp, got \"\(app)\""))
                } else if app.lowercased() == "http" && proto != "TCP" {
                    errors.append((path / "appProtocol").error("http needs protocol TCP"))
                }
            }
        }
        if let http = service.spec.http {
            errors += validateHTTPSettings(http, at: spec / "http")
        }
        return errors
    }

    static func validateHTTPSettings(_ http: HTTPRouteSettings, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if let timeout = http.timeoutMs, !(1...3_600_000).contains(timeout) {
            errors.append((path / "timeoutMs").error("must be between 1 and 3600000 (one hour), got \(timeout)"))
        }
        if let retries = http.retries {
            let r = path / "retries"
            if let attempts = retries.attempts, !(0...10).contains(attempts) {
                errors.append((r / "attempts").error("must be between 0 (no retries) and 10, got \(attempts)"))
            }
            if let percent = retries.budgetPercent, !(0...100).contains(percent) {
                errors.append((r / "budgetPercent").error("must be between 0 and 100, got \(percent)"))
            }
            if let minimum = retries.minRetriesPerSecond, minimum < 0 {
                errors.append((r / "minRetriesPerSecond").error("must be 0 or more, got \(minimum)"))
            }
        }
        return errors
    }

    public static func validate(_ policy: AuthorizationPolicy) -> [FieldError] {
        var errors = validateCommon(apiVersion: policy.apiVersion, metadata: policy.metadata, nameRule: .plain)
        let spec = FieldPath() / "spec"
        if let problem = dnsLabelProblem(policy.spec.service, mustStartWithLetter: true) {
            errors.append((spec / "service").error(problem))
        }
        var seenRules: [AuthorizationRuleKey: Int] = [:]
        for (i, rule) in policy.spec.allow.enumerated() {
            let path = (spec / "allow")[i]
            let (ruleErrors, key) = validateRule(rule, at: path, policyNamespace: policy.namespace)
            errors += ruleErrors
            guard let key else { continue }
            if let first = seenRules[key] {
                errors.append(path.error("duplicate rule (also allow[\(first)])"))
            } else {
                seenRules[key] = i
            }
        }
        return errors
    }

    public static func validate(_ peerAuthentication: PeerAuthentication) -> [FieldError] {
        var errors = validateCommon(apiVersion: peerAuthentication.apiVersion, metadata: peerAuthentication.metadata, nameRule: .plain)
        let mtls = peerAuthentication.spec.mtls
        if mtls.mutualTLSMode == nil {
            let modes = MutualTLSMode.allCases.map(\.rawValue).joined(separator: " or ")
            errors.append((FieldPath() / "spec" / "mtls" / "mode").error("must be \(modes), got \"\(mtls.mode)\""))
        }
        return errors
    }

    /// What a rule matches, to find rules listed twice: service accounts as `namespace/name` (a bare
    /// name stays bare when the rule lists namespaces, since it then stands for one in each of them).
    struct AuthorizationRuleKey: Hashable {
        var serviceAccounts: Set<String>?
        var namespaces: Set<String>?
    }

    /// The rule's problems, and its key when it has none.
    static func validateRule(_ rule: AuthorizationRule, at path: FieldPath, policyNamespace: String) -> ([FieldError], AuthorizationRuleKey?) {
        var errors: [FieldError] = []
        var namespaces: Set<String>?
        if let listed = rule.namespaces {
            let listPath = path / "namespaces"
            if listed.isEmpty {
                errors.append(listPath.error("must list at least one namespace; omit the field to allow every namespace"))
            }
            var seen = Set<String>()
            for (i, namespace) in listed.enumerated() {
                if let problem = dnsLabelProblem(namespace) {
                    errors.append(listPath[i].error(problem))
                } else if !seen.insert(namespace).inserted {
                    errors.append(listPath[i].error("duplicate namespace \"\(namespace)\""))
                }
            }
            namespaces = seen
        }
        var accounts: Set<String>?
        if let listed = rule.serviceAccounts {
            let listPath = path / "serviceAccounts"
            if listed.isEmpty {
                errors.append(listPath.error("must list at least one service account; omit the field to allow every service account"))
            }
            var seen: [String: Int] = [:]
            for (i, text) in listed.enumerated() {
                let entry = listPath[i]
                guard let reference = ServiceAccountReference(text) else {
                    errors.append(entry.error("\"\(text)\" is not a service account: use name (in the policy's namespace) or namespace/name, with one '/'"))
                    continue
                }
                var valid = true
                if let namespace = reference.namespace, let problem = dnsLabelProblem(namespace) {
                    errors.append(entry.error("namespace of \"\(text)\": \(problem)"))
                    valid = false
                }
                if let problem = dnsLabelProblem(reference.name) {
                    errors.append(entry.error(reference.namespace == nil ? problem : "service account of \"\(text)\": \(problem)"))
                    valid = false
                }
                guard valid else { continue }
                if let namespace = reference.namespace, let namespaces, !namespaces.isEmpty, !namespaces.contains(namespace) {
                    errors.append(entry.error("\"\(text)\" is in namespace \(namespace), which this rule's namespaces do not list, so it could never match; "
                        + "add \(namespace) to namespaces or give the service account in a rule of its own"))
                    continue
                }
                let resolved = namespaces == nil ? "\(reference.namespace ?? policyNamespace)/\(reference.name)" : reference.description
                if let first = seen[resolved] {
                    errors.append(entry.error("duplicate service account \"\(resolved)\" (also serviceAccounts[\(first)])"))
                } else {
                    seen[resolved] = i
                }
            }
            accounts = Set(seen.keys)
        }
        return (errors, errors.isEmpty ? AuthorizationRuleKey(serviceAccounts: accounts, namespaces: namespaces) : nil)
    }

    // MARK: - Parts

    /// Deployments leave room for replica names; services must start with a letter (they are DNS
    /// names); other kinds take any DNS label.
    enum NameRule { case deployment, service, plain }

    static func validateCommon(apiVersion: String, metadata: ObjectMeta, nameRule: NameRule) -> [FieldError] {
        var errors: [FieldError] = []
        if apiVersion != weftAPIVersion {
            errors.append(FieldError(path: "apiVersion", message: "must be \(weftAPIVersion), got \"\(apiVersion)\""))
        }
        let meta = FieldPath() / "metadata"
        let maxLength = nameRule == .deployment ? maxDeploymentNameLength : 63
        if let problem = dnsLabelProblem(metadata.name, maxLength: maxLength, mustStartWithLetter: nameRule == .service) {
            errors.append((meta / "name").error(problem))
        }
        if let namespace = metadata.namespace, let problem = dnsLabelProblem(namespace, maxLength: 63, mustStartWithLetter: false) {
            errors.append((meta / "namespace").error(problem))
        }
        errors += validateLabels(metadata.labels ?? [:], at: meta / "labels")
        return errors
    }

    static func validateStrategy(_ strategy: DeploymentStrategy, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        let type = strategy.resolvedType
        if !["RollingUpdate", "Recreate", "Canary"].contains(type) {
            errors.append((path / "type").error("must be RollingUpdate, Recreate or Canary, got \"\(type)\""))
        }
        if let canary = strategy.canary {
            if type != "Canary" {
                errors.append((path / "canary").error("may only be set when type is Canary (or type is left out), not \(type)"))
            }
            errors += validateCanary(canary, at: path / "canary")
        } else if type == "Canary" {
            errors.append((path / "canary").error("is required when type is Canary: list the steps, e.g. canary: {steps: [{setWeight: 20}, {pause: {duration: 1m}}]}"))
        }
        if let rolling = strategy.rollingUpdate {
            if type != "RollingUpdate" {
                errors.append((path / "rollingUpdate").error("may only be set when type is RollingUpdate"))
            }
            for (field, value) in [("maxSurge", rolling.maxSurge), ("maxUnavailable", rolling.maxUnavailable)] {
                guard let value else { continue }
                if IntOrPercent(value) == nil {
                    errors.append((path / "rollingUpdate" / field).error("must be a non-negative integer or a percentage such as \"25%\", got \"\(value)\""))
                }
            }
            if let surge = rolling.maxSurge.flatMap(IntOrPercent.init), let unavailable = rolling.maxUnavailable.flatMap(IntOrPercent.init),
               surge.isZero, unavailable.isZero {
                errors.append((path / "rollingUpdate").error("maxSurge and maxUnavailable must not both be 0, or the update could never progress"))
            }
        }
        return errors
    }

    static let durationForms = "a whole number with a unit, such as 500ms, 30s, 5m, 1h or 1m30s"

    /// Steps, pauses and analysis thresholds of a canary strategy.
    static func validateCanary(_ canary: CanaryStrategy, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if canary.steps.isEmpty {
            errors.append((path / "steps").error("must list at least one step: {setWeight: 0-100} or {pause: {duration: 30s}}"))
        }
        for (index, step) in canary.steps.enumerated() {
            let stepPath = (path / "steps")[index]
            switch (step.setWeight, step.pause) {
            case (nil, nil):
                errors.append(stepPath.error("must set exactly one of setWeight or pause; it sets neither"))
            case (.some, .some):
                errors.append(stepPath.error("must set exactly one of setWeight or pause; it sets both (make them two steps)"))
            case (let weight?, nil):
                if !(0...100).contains(weight) {
                    errors.append((stepPath / "setWeight").error("must be between 0 and 100"))
                }
            case (nil, let pause?):
                if let duration = pause.duration, DurationText.parse(duration) == nil {
                    errors.append((stepPath / "pause" / "duration").error("\"\(duration)\" is not a duration: write \(durationForms), or leave it out to pause until `weft rollout promote`"))
                }
            }
        }
        guard let analysis = canary.analysis else { return errors }
        let analysisPath = path / "analysis"
        if let rate = analysis.successRate, !(0...1).contains(rate) {
            errors.append((analysisPath / "successRate").error("must be between 0 and 1 (a share of requests, e.g. 0.99), got \(rate)"))
        }
        if let latency = analysis.p99LatencyMs, latency <= 0 {
            errors.append((analysisPath / "p99LatencyMs").error("must be greater than 0 milliseconds, got \(latency)"))
        }
        if let interval = analysis.interval {
            if let duration = DurationText.parse(interval) {
                if duration < .seconds(1) {
                    errors.append((analysisPath / "interval").error("must be at least 1s, got \(interval)"))
                }
            } else {
                errors.append((analysisPath / "interval").error("\"\(interval)\" is not a duration: write \(durationForms)"))
            }
        }
        if let limit = analysis.failureLimit, limit < 1 {
            errors.append((analysisPath / "failureLimit").error("must be at least 1, got \(limit)"))
        }
        if let minimum = analysis.minRequests, minimum < 1 {
            errors.append((analysisPath / "minRequests").error("must be at least 1, got \(minimum)"))
        }
        return errors
    }

    static let reservedEnv = ["PORT"]
    static let reservedEnvPrefixes = ["PORT_", "WEFT_"]

    static func validateWorkload(_ workload: WorkloadSpec, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        let oci = workload.runtime == WorkloadRuntime.oci.rawValue
        if let command = workload.command, !command.isEmpty {
            if command[0].isEmpty { errors.append((path / "command")[0].error("must not be empty")) }
        } else if !(oci && workload.image != nil) {
            errors.append((path / "command").error(workload.command == nil && !oci
                ? "is required" + ": name the program to run, e.g. [\"/usr/bin/python3\", \"-m\", \"http.server\"]"
                : "must name the program to run, e.g. [\"/usr/bin/python3\", \"-m\", \"http.server\"] (only runtime: oci with an image may leave it out)"))
        }
        errors += validateContainer(workload, at: path)
        var envNames = Set<String>()
        for (i, variable) in (workload.env ?? []).enumerated() {
            let namePath = (path / "env")[i] / "name"
            if !isEnvName(variable.name) {
                errors.append(namePath.error("\"\(variable.name)\" is not a valid variable name (letters, digits, _; not starting with a digit)"))
            } else if reservedEnv.contains(variable.name) || reservedEnvPrefixes.contains(where: variable.name.hasPrefix) {
                errors.append(namePath.error("\(variable.name) is set by Weft for every replica; choose another name"))
            }
            if !envNames.insert(variable.name).inserted {
                errors.append(namePath.error("duplicate variable \(variable.name)"))
            }
        }
        errors += validateConfigUse(workload, at: path)
        if let dir = workload.workingDir, !dir.hasPrefix("/") {
            errors.append((path / "workingDir").error("must be an absolute path"))
        }
        if let account = workload.serviceAccountName, let problem = dnsLabelProblem(account) {
            errors.append((path / "serviceAccountName").error(problem))
        }
        if let runtime = workload.runtime, let problem = WorkloadRuntime.problem(runtime) {
            errors.append((path / "runtime").error(problem))
        }
        var portNames = Set<String>()
        var hostPorts = Set<String>()
        for (i, port) in (workload.ports ?? []).enumerated() {
            let portPath = (path / "ports")[i]
            if let problem = portNameProblem(port.name) { errors.append((portPath / "name").error(problem)) }
            if !portNames.insert(port.name).inserted {
                errors.append((portPath / "name").error("duplicate port name \"\(port.name)\""))
            }
            if let number = port.containerPort, !(1...65535).contains(number) {
                errors.append((portPath / "containerPort").error("must be between 1 and 65535"))
            }
            if let proto = port.protocol, !["TCP", "UDP"].contains(proto) {
                errors.append((portPath / "protocol").error("must be TCP or UDP, got \"\(proto)\""))
            }
            if let hostPort = port.hostPort {
                if !(1...65535).contains(hostPort) {
                    errors.append((portPath / "hostPort").error("must be between 1 and 65535"))
                } else if !hostPorts.insert("\(hostPort)/\(port.protocol ?? "TCP")").inserted {
                    errors.append((portPath / "hostPort").error("duplicate host port \(hostPort)/\(port.protocol ?? "TCP")"))
                }
            }
        }
        if let selector = workload.nodeSelector {
            errors += validateLabels(selector, at: path / "nodeSelector")
        }
        for (i, toleration) in (workload.tolerations ?? []).enumerated() {
            errors += validateToleration(toleration, at: (path / "tolerations")[i])
        }
        if let probe = workload.readinessProbe {
            errors += validateProbe(probe, at: path / "readinessProbe", declared: workload.ports ?? [], isLiveness: false)
        }
        if let probe = workload.livenessProbe {
            errors += validateProbe(probe, at: path / "livenessProbe", declared: workload.ports ?? [], isLiveness: true)
        }
        if let resources = workload.resources {
            errors += validateResources(resources, at: path / "resources")
        }
        if let grace = workload.terminationGracePeriodSeconds, !(0...3600).contains(grace) {
            errors.append((path / "terminationGracePeriodSeconds").error("must be between 0 and 3600"))
        }
        return errors
    }

    /// The fields of `runtime: oci`: exactly one of `image` and `rootfs`, neither with another runtime.
    static func validateContainer(_ workload: WorkloadSpec, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        let oci = workload.runtime == WorkloadRuntime.oci.rawValue
        if !oci {
            for (field, value) in [("image", workload.image), ("rootfs", workload.rootfs)] where value != nil {
                errors.append((path / field).error("needs runtime: oci (a container run by runc); add it, or remove \(field)"))
            }
            if workload.securityContext != nil {
                errors.append((path / "securityContext").error("needs runtime: oci; other runtimes run the replica as the agent's user"))
            }
            return errors
        }
        switch (workload.image, workload.rootfs) {
        case (nil, nil):
            errors.append((path / "image").error("is required with runtime: oci: an image imported with weft image import (NAME[:TAG]), or give rootfs: a root filesystem directory on the node"))
        case (.some, .some):
            errors.append((path / "rootfs").error("must not be given together with image; choose one"))
        case (let image?, nil):
            if let problem = ImageReference.problem(image) { errors.append((path / "image").error(problem)) }
        case (nil, let rootfs?):
            if !rootfs.hasPrefix("/") || rootfs.split(separator: "/").contains("..") {
                errors.append((path / "rootfs").error("must be an absolute path without '..' to a root filesystem directory on the node, got \"\(rootfs)\""))
            }
        }
        if let context = workload.securityContext {
            for (field, value) in [("runAsUser", context.runAsUser), ("runAsGroup", context.runAsGroup)] {
                if let value, !(0...Int(UInt32.max - 1)).contains(value) {
                    errors.append((path / "securityContext" / field).error("must be a user or group id from 0 to 4294967294, got \(value)"))
                }
            }
        }
        return errors
    }

    static func validateToleration(_ toleration: Toleration, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        let op = toleration.operator ?? Toleration.equal
        let key = toleration.key ?? ""
        switch op {
        case Toleration.equal:
            if key.isEmpty {
                errors.append((path / "key").error("is required with operator Equal; use operator Exists without a key to tolerate every taint"))
            }
        case Toleration.exists:
            if let value = toleration.value, !value.isEmpty {
                errors.append((path / "value").error("must be empty with operator Exists, which matches any value"))
            }
        default:
            errors.append((path / "operator").error("must be Equal or Exists, got \"\(op)\""))
        }
        if !key.isEmpty {
            errors += validateLabels([key: ""], at: path / "key").map { (path / "key").error($0.message) }
        }
        if let value = toleration.value, !isLabelToken(value, allowEmpty: true) {
            errors.append((path / "value").error("invalid value \"\(value)\": at most 63 letters, digits, '-', '_', '.', beginning and ending with a letter or digit"))
        }
        if let effect = toleration.effect, !effect.isEmpty, effect != Taint.noSchedule {
            errors.append((path / "effect").error("must be NoSchedule (or empty for every effect), got \"\(effect)\""))
        }
        return errors
    }

    /// The rules for a node an agent registers: name, label syntax, capacity quantities and taints.
    public static func validate(_ node: Node) -> [FieldError] {
        var errors = validateLabels(node.metadata.labels ?? [:], at: FieldPath() / "metadata" / "labels")
        if let problem = dnsLabelProblem(node.name) {
            errors.append((FieldPath() / "metadata" / "name").error(problem))
        }
        if let cpu = node.status?.capacity?.cpu, Quantity.millicores(cpu) == nil {
            errors.append((FieldPath() / "status" / "capacity" / "cpu").error("\"\(cpu)\" is not a CPU quantity such as 4 or 1500m"))
        }
        if let memory = node.status?.capacity?.memory, Quantity.bytes(memory) == nil {
            errors.append((FieldPath() / "status" / "capacity" / "memory").error("\"\(memory)\" is not a memory quantity such as 8Gi"))
        }
        var seen = Set<String>()
        for (i, taint) in (node.spec?.taints ?? []).enumerated() {
            let path = (FieldPath() / "spec" / "taints")[i]
            errors += validateLabels([taint.key: ""], at: path / "key").map { (path / "key").error($0.message) }
            if let value = taint.value, !isLabelToken(value, allowEmpty: true) {
                errors.append((path / "value").error("invalid value \"\(value)\": at most 63 letters, digits, '-', '_', '.', beginning and ending with a letter or digit"))
            }
            if taint.effect != Taint.noSchedule {
                errors.append((path / "effect").error("must be NoSchedule, got \"\(taint.effect)\""))
            }
            if !seen.insert("\(taint.key)/\(taint.effect)").inserted {
                errors.append((path / "key").error("duplicate taint \(taint.key):\(taint.effect)"))
            }
        }
        return errors
    }

    static func validateProbe(_ probe: Probe, at path: FieldPath, declared: [ContainerPort], isLiveness: Bool) -> [FieldError] {
        var errors: [FieldError] = []
        let handlers = [probe.httpGet != nil, probe.tcpSocket != nil, probe.exec != nil].filter { $0 }.count
        if handlers != 1 {
            errors.append(path.error("must set exactly one of httpGet, tcpSocket, exec (\(handlers) set)"))
        }
        if let http = probe.httpGet {
            errors += validatePortReference(http.port, at: path / "httpGet" / "port", declared: declared)
            if let p = http.path, !p.hasPrefix("/") {
                errors.append((path / "httpGet" / "path").error("must start with /"))
            }
        }
        if let tcp = probe.tcpSocket {
            errors += validatePortReference(tcp.port, at: path / "tcpSocket" / "port", declared: declared)
        }
        if let exec = probe.exec, exec.command.isEmpty || exec.command[0].isEmpty {
            errors.append((path / "exec" / "command").error("must name the program to run"))
        }
        let bounds: [(String, Int?, Int)] = [
            ("initialDelaySeconds", probe.initialDelaySeconds, 0), ("periodSeconds", probe.periodSeconds, 1),
            ("timeoutSeconds", probe.timeoutSeconds, 1), ("successThreshold", probe.successThreshold, 1),
            ("failureThreshold", probe.failureThreshold, 1),
        ]
        for (field, value, minimum) in bounds {
            if let value, !(minimum...3600).contains(value) {
                errors.append((path / field).error("must be between \(minimum) and 3600"))
            }
        }
        if isLiveness, let s = probe.successThreshold, s != 1 {
            errors.append((path / "successThreshold").error("must be 1 for a liveness probe"))
        }
        return errors
    }

    static func validatePortReference(_ ref: PortReference, at path: FieldPath, declared: [ContainerPort]?) -> [FieldError] {
        switch ref {
        case .number(let n):
            return (1...65535).contains(n) ? [] : [path.error("must be between 1 and 65535")]
        case .name(let name):
            if let problem = portNameProblem(name) { return [path.error(problem)] }
            if let declared, !declared.contains(where: { $0.name == name }) {
                let known = declared.map(\.name)
                return [path.error("names no declared port \"\(name)\"" + (known.isEmpty ? "; declare it under ports" : " (declared: \(known.joined(separator: ", ")))"))]
            }
            return []
        }
    }

    static func validateResources(_ resources: ResourceRequirements, at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        for (field, list) in [("requests", resources.requests), ("limits", resources.limits)] {
            guard let list else { continue }
            if let cpu = list.cpu, Quantity.millicores(cpu) == nil {
                errors.append((path / field / "cpu").error("\"\(cpu)\" is not a CPU quantity (e.g. 250m, 0.5, 2)"))
            }
            if let memory = list.memory, Quantity.bytes(memory) == nil {
                errors.append((path / field / "memory").error("\"\(memory)\" is not a memory quantity (e.g. 64Mi, 1Gi, 500M)"))
            }
        }
        if let request = resources.requests?.cpu.flatMap(Quantity.millicores), let limit = resources.limits?.cpu.flatMap(Quantity.millicores), request > limit {
            errors.append((path / "requests" / "cpu").error("must not exceed limits.cpu"))
        }
        if let request = resources.requests?.memory.flatMap(Quantity.bytes), let limit = resources.limits?.memory.flatMap(Quantity.bytes), request > limit {
            errors.append((path / "requests" / "memory").error("must not exceed limits.memory"))
        }
        return errors
    }

    static func validateLabels(_ labels: [String: String], at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "/", omittingEmptySubsequences: false)
            let name = String(parts.last ?? "")
            if parts.count > 2 || !isLabelToken(name, allowEmpty: false) || (parts.count == 2 && dnsSubdomainProblem(String(parts[0])) != nil) {
                errors.append((path / key).error("invalid label key: use [prefix/]name, name of at most 63 letters, digits, '-', '_', '.', beginning and ending with a letter or digit"))
            }
            if !isLabelToken(value, allowEmpty: true) {
                errors.append((path / key).error("invalid label value \"\(value)\": at most 63 letters, digits, '-', '_', '.', beginning and ending with a letter or digit"))
            }
        }
        return errors
    }

    // MARK: - Lexical rules

    /// RFC 1123 label (lower-case), as Kubernetes uses for names.
    public static func dnsLabelProblem(_ s: String, maxLength: Int = 63, mustStartWithLetter: Bool = false) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.count > maxLength { return "must be at most \(maxLength) characters (\"\(s)\" has \(s.count))" }
        let allowed = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        let first = s.unicodeScalars.first!, last = s.unicodeScalars.last!
        let startOK = mustStartWithLetter ? ("a"..."z").contains(first) : first != "-"
        if !allowed || !startOK || last == "-" {
            return "\"\(s)\" is not a valid name: use lower-case letters, digits and '-', "
                + (mustStartWithLetter ? "starting with a letter" : "starting") + " and ending with a letter or digit"
        }
        return nil
    }

    static func dnsSubdomainProblem(_ s: String) -> String? {
        if s.isEmpty || s.count > 253 { return "must be 1 to 253 characters" }
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            if let problem = dnsLabelProblem(String(label)) { return problem }
        }
        return nil
    }

    /// IANA service name rules for port names: at most 15 lower-case letters, digits and '-', with a letter.
    static func portNameProblem(_ name: String) -> String? {
        let ok = !name.isEmpty && name.count <= 15
            && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
            && name.unicodeScalars.contains { ("a"..."z").contains($0) }
            && !name.hasPrefix("-") && !name.hasSuffix("-") && !name.contains("--")
        return ok ? nil : "\"\(name)\" is not a valid port name: at most 15 lower-case letters, digits and '-', with at least one letter"
    }

    static func isLabelToken(_ s: String, allowEmpty: Bool) -> Bool {
        if s.isEmpty { return allowEmpty }
        guard s.count <= 63 else { return false }
        let isAlnum: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
        return s.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
            && isAlnum(s.unicodeScalars.first!) && isAlnum(s.unicodeScalars.last!)
    }

    static func isEnvName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}

/// A count or a percentage, as in `maxSurge: 1` or `maxSurge: "25%"`.
public enum IntOrPercent: Sendable, Hashable {
    case count(Int)
    case percent(Int)

    public init?(_ ref: PortReference) {
        switch ref {
        case .number(let n) where n >= 0: self = .count(n)
        case .name(let s) where s.hasSuffix("%"):
            guard let p = Int(s.dropLast()), (0...100).contains(p) else { return nil }
            self = .percent(p)
        default: return nil
        }
    }

    var isZero: Bool {
        switch self {
        case .count(let n), .percent(let n): return n == 0
        }
    }

    /// The absolute number for `total` replicas, rounding up (surge) or down (unavailable).
    public func resolve(total: Int, roundUp: Bool) -> Int {
        switch self {
        case .count(let n): return n
        case .percent(let p):
            let scaled = total * p
            return roundUp ? (scaled + 99) / 100 : scaled / 100
        }
    }
}

/// Textual checks of IP addresses without touching the network.
public enum IPAddressText {
    public static func isValid(_ s: String) -> Bool { isIPv4(s) || isIPv6(s) }

    public static func isIPv4(_ s: String) -> Bool { IPv4Address(s) != nil }

    public static func isIPv6(_ s: String) -> Bool {
        guard s.contains(":"), s.count <= 45 else { return false }
        let doubleColons = s.components(separatedBy: "::").count - 1
        guard doubleColons <= 1, !s.contains(":::") else { return false }
        // A colon may only start or end the address as part of "::".
        if (s.hasPrefix(":") && !s.hasPrefix("::")) || (s.hasSuffix(":") && !s.hasSuffix("::")) { return false }
        var groups = s.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
        var limit = 8
        if let last = groups.last, last.contains(".") {
            // An embedded IPv4 address can only be the last part.
            guard s.hasSuffix(last), isIPv4(last) else { return false }
            groups.removeLast()
            limit = 6
        }
        let hex = groups.allSatisfy { g in !g.isEmpty && g.count <= 4 && g.allSatisfy(\.isHexDigit) }
        return hex && (doubleColons == 1 ? groups.count < limit : groups.count == limit)
    }
}
