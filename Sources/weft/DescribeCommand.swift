import ArgumentParser
import Foundation
import WeftClient
import WeftCore

/// `weft describe KIND NAME`: one object in readable form, with its replicas for a deployment.
struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show one object in detail.")

    @Argument(help: "deployment, service, replica, node, endpoints, authorizationpolicy (authz), peerauthentication (peerauth), configmap (cm) or secret.")
    var kind: String

    @Argument(help: "The object's name.")
    var name: String

    @OptionGroup var namespace: NamespaceOption
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await reportingErrors {
            let kind = try parseKind(kind)
            try await client.withClient { api in
                let scope = kind.isNamespaced ? namespace.resolved : nil
                let object = try await api.get(kind, namespace: scope, name: name)
                var out = Description()
                let now = Date()
                switch kind {
                case .deployment:
                    guard let deployment = ResourceView.decode(Deployment.self, object) else { throw unreadable(kind) }
                    let replicas = try await api.list(Replica.self, namespace: scope).items.filter { $0.spec.deployment == name }
                    out.deployment(deployment, replicas: replicas, now: now)
                case .service:
                    guard let service = ResourceView.decode(Service.self, object) else { throw unreadable(kind) }
                    let endpoints = try await api.get(Endpoints.self, namespace: scope, name: name)
                    out.service(service, endpoints: endpoints, now: now)
                case .replica:
                    guard let replica = ResourceView.decode(Replica.self, object) else { throw unreadable(kind) }
                    out.replica(replica, now: now)
                case .node:
                    guard let node = ResourceView.decode(Node.self, object) else { throw unreadable(kind) }
                    let replicas = try await api.list(Replica.self, namespace: nil).items
                    out.node(node, replicas: replicas.filter { $0.spec.node == name }, now: now)
                case .endpoints:
                    guard let endpoints = ResourceView.decode(Endpoints.self, object) else { throw unreadable(kind) }
                    out.metadata(endpoints.metadata, namespaced: true, now: now)
                    out.endpoints(endpoints)
                case .authorizationPolicy:
                    guard let policy = ResourceView.decode(AuthorizationPolicy.self, object) else { throw unreadable(kind) }
                    let service = try await api.get(Service.self, namespace: scope, name: policy.spec.service)
                    out.authorizationPolicy(policy, serviceExists: service != nil, now: now)
                case .peerAuthentication:
                    guard let peerAuthentication = ResourceView.decode(PeerAuthentication.self, object) else { throw unreadable(kind) }
                    out.peerAuthentication(peerAuthentication, now: now)
                case .configMap:
                    guard let configMap = ResourceView.decode(ConfigMap.self, object) else { throw unreadable(kind) }
                    out.configMap(configMap, now: now)
                case .secret:
                    guard let secret = ResourceView.decode(Secret.self, object) else { throw unreadable(kind) }
                    out.secret(secret, now: now)
                }
                print(out.text, terminator: "")
            }
        }
    }

    private func unreadable(_ kind: ResourceKind) -> ClientError {
        ClientError("the API server sent a \(kind.rawValue) this client cannot read; are client and server the same version?")
    }
}

/// Builds the `Key:  value` text of `weft describe`, with nested sections indented.
struct Description {
    private(set) var text = ""
    private var indent = 0

    mutating func field(_ key: String, _ value: String?) {
        let pad = String(repeating: " ", count: indent)
        let label = key + ":"
        text += pad + label + String(repeating: " ", count: max(1, 20 - indent - label.count)) + (value ?? "<none>") + "\n"
    }

    mutating func section(_ title: String, _ body: (inout Description) -> Void) {
        text += String(repeating: " ", count: indent) + title + ":\n"
        indent += 2
        body(&self)
        indent -= 2
    }

    mutating func lines(_ block: String) {
        let pad = String(repeating: " ", count: indent)
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            text += pad + line + "\n"
        }
    }

    // MARK: - Kinds

    mutating func metadata(_ meta: ObjectMeta, namespaced: Bool, now: Date) {
        field("Name", meta.name)
        if namespaced { field("Namespace", meta.namespace ?? defaultNamespace) }
        field("Labels", Self.pairs(meta.labels))
        field("Annotations", Self.pairs(meta.annotations))
        field("Created", meta.creationTimestamp.map { "\($0) (\(Age.since($0, now: now)) ago)" })
        if let deletion = meta.deletionTimestamp { field("Deleting since", "\(deletion) (\(Age.since(deletion, now: now)) ago)") }
        field("Resource Version", meta.resourceVersion)
    }

    mutating func deployment(_ deployment: Deployment, replicas: [Replica], now: Date) {
        metadata(deployment.metadata, namespaced: true, now: now)
        field("Generation", deployment.metadata.generation.map { "\($0) (observed: \(deployment.status?.observedGeneration.map(String.init) ?? "none"))" })
        let status = deployment.status ?? DeploymentStatus()
        field("Replicas", "\(deployment.spec.desiredReplicas) desired | \(status.updatedReplicas) updated | \(status.replicas) total | \(status.readyReplicas) ready")
        field("Selector", Self.pairs(deployment.spec.selector?.matchLabels ?? deployment.spec.template.metadata?.labels))
        let strategy = deployment.spec.strategy
        var strategyText = strategy?.type ?? "RollingUpdate"
        if strategyText == "RollingUpdate" {
            let bounds = DeploymentPlan.rollingBounds(desired: deployment.spec.desiredReplicas, strategy: strategy)
            strategyText += " (max surge \(strategy?.rollingUpdate?.maxSurge?.description ?? "25%"), max unavailable \(strategy?.rollingUpdate?.maxUnavailable?.description ?? "25%"): \(bounds.surge) extra, \(bounds.unavailable) unavailable)"
        }
        if let canary = strategy?.canary {
            strategyText = "Canary (steps: \(canary.steps.map(RolloutText.stepText).joined(separator: ", ")))"
            if let analysis = canary.analysis {
                var rules: [String] = []
                if let rate = analysis.successRate { rules.append("success rate >= \(rate)") }
                if let p99 = analysis.p99LatencyMs { rules.append("p99 <= \(p99)ms") }
                rules.append("every \(analysis.interval ?? DurationText.format(CanaryAnalysis.defaultInterval))")
                rules.append("abort after \(analysis.failures) failed intervals")
                strategyText += "; analysis: " + rules.joined(separator: ", ")
            }
        }
        field("Strategy", strategyText)
        section("Template") { out in
            out.field("Labels", Self.pairs(deployment.spec.template.metadata?.labels))
            out.field("Template Hash", TemplateHash.of(deployment.spec.template))
            out.workload(deployment.spec.template.spec, serviceAccount: deployment.serviceAccount)
        }
        if deployment.status?.rollout != nil {
            section("Rollout") { out in
                out.lines(RolloutText.status(deployment, replicas: replicas, now: now))
            }
        }
        let events = deployment.status?.events ?? []
        section("Events") { out in
            if events.isEmpty {
                out.lines("<none>")
            } else {
                let rows = events.map { [$0.type, $0.reason, Age.since($0.time, now: now), $0.message] }
                out.lines(Table(headers: ["TYPE", "REASON", "AGE", "MESSAGE"], rows: rows).render())
            }
        }
        section("Replicas") { out in
            if replicas.isEmpty {
                out.lines("<none>")
            } else {
                let objects = replicas.sorted { $0.name < $1.name }.compactMap { try? JSONValue.parse(JSONEncoder().encode($0)) }
                out.lines(ResourceView.table(.replica, objects, allNamespaces: false, now: now).render())
            }
        }
    }

    mutating func workload(_ spec: WorkloadSpec, serviceAccount: String) {
        field("Command", spec.command == nil && spec.args == nil ? "(the image's)" : Self.shellWords((spec.command ?? ["(the image's entrypoint)"]) + (spec.args ?? [])))
        if let image = spec.image { field("Image", image) }
        if let rootfs = spec.rootfs { field("Root Filesystem", rootfs) }
        if let user = spec.securityContext?.runAsUser { field("Run As User", String(user)) }
        if let group = spec.securityContext?.runAsGroup { field("Run As Group", String(group)) }
        field("Service Account", serviceAccount + (spec.serviceAccountName == nil ? " (the deployment's name)" : ""))
        field("Runtime", spec.runtime ?? "(the node's default)")
        if let dir = spec.workingDir { field("Working Dir", dir) }
        field("Ports", (spec.ports ?? []).isEmpty ? nil : (spec.ports ?? []).map { port in
            port.name + (port.containerPort.map { " (container port \($0))" } ?? "") + "/\(port.protocol ?? "TCP")"
        }.joined(separator: ", "))
        if let env = spec.env, !env.isEmpty {
            section("Environment") { out in
                for variable in env { out.field(variable.name, variable.value ?? Self.source(variable.valueFrom)) }
            }
        }
        if let sources = spec.envFrom, !sources.isEmpty {
            field("Environment From", sources.map { source in
                (source.configMapRef.map { "configmap/\($0.name)" } ?? source.secretRef.map { "secret/\($0.name)" } ?? "?")
                    + (source.prefix.map { " (prefix \($0))" } ?? "")
            }.joined(separator: ", "))
        }
        if let volumes = spec.volumes, !volumes.isEmpty {
            section("Volumes") { out in
                for volume in volumes {
                    let source = volume.configMap.map { "configmap/\($0.name)" } ?? volume.secret.map { "secret/\($0.resolvedName)" } ?? "?"
                    let mount = spec.volumeMounts?.first { $0.name == volume.name }?.mountPath
                    out.field(volume.name, source + (mount.map { " at \($0)" } ?? "") + " (WEFT_VOLUME_\(volume.name.uppercased().replacingOccurrences(of: "-", with: "_")))")
                }
            }
        }
        field("Readiness", spec.readinessProbe.map(Self.probe))
        field("Liveness", spec.livenessProbe.map(Self.probe))
        if let resources = spec.resources {
            field("Requests", Self.resourceList(resources.requests))
            field("Limits", Self.resourceList(resources.limits))
        }
        field("Grace Period", "\(spec.gracePeriodSeconds)s")
    }

    /// `<from configmap/web-config key VERSION>`: where a variable's value comes from, never the value.
    static func source(_ source: EnvVarSource?) -> String {
        if let ref = source?.configMapKeyRef { return "<from configmap/\(ref.name) key \(ref.key)\(ref.optional == true ? ", optional" : "")>" }
        if let ref = source?.secretKeyRef { return "<from secret/\(ref.name) key \(ref.key)\(ref.optional == true ? ", optional" : "")>" }
        return ""
    }

    mutating func replica(_ replica: Replica, now: Date) {
        metadata(replica.metadata, namespaced: true, now: now)
        field("Deployment", replica.spec.deployment)
        field("Node", replica.spec.node)
        field("Template Hash", replica.spec.templateHash)
        let status = replica.status
        field("Phase", ResourceView.phase(replica))
        field("Ready", replica.isReady ? "true" : "false")
        field("Message", status?.message)
        field("Address", status?.address)
        field("Ports", (status?.ports ?? [:]).isEmpty ? nil : (status?.ports ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        field("Restarts", "\(status?.restarts ?? 0)")
        field("Last Exit Status", status?.lastExitStatus)
        field("Last Exit Reason", status?.lastExitReason)
        field("PID", status?.pid.map(String.init))
        field("Started", status?.startedAt.map { "\($0) (\(Age.since($0, now: now)) ago)" })
        section("Template") { out in out.workload(replica.spec.template, serviceAccount: replica.serviceAccount) }
    }

    mutating func service(_ service: Service, endpoints: Endpoints?, now: Date) {
        metadata(service.metadata, namespaced: true, now: now)
        field("Type", service.spec.serviceType.rawValue)
        field("Cluster IP", service.spec.clusterIP)
        field("Selector", Self.pairs(service.spec.selector))
        section("Ports") { out in
            for port in service.spec.ports {
                out.field(port.name ?? "(unnamed)", "\(port.port)/\(port.protocol ?? "TCP") -> target port \(port.targetPort?.description ?? String(port.port))"
                          + (port.isHTTP ? " (http: balanced per request)" : ""))
            }
        }
        if let endpoints { self.endpoints(endpoints) }
    }

    mutating func endpoints(_ endpoints: Endpoints) {
        section("Endpoints") { out in
            if endpoints.endpoints.isEmpty { out.lines("<none ready>") }
            for endpoint in endpoints.endpoints {
                let ports = endpoint.ports.sorted { $0.key < $1.key }.map { "\($0.key)->\($0.value)" }.joined(separator: ", ")
                out.field(endpoint.replica, "\(endpoint.ip) [\(ports)] on \(endpoint.node)" + (endpoint.weight.map { " weight \($0)" } ?? "")
                          + (endpoint.revision.map { " revision \($0)" } ?? ""))
            }
            if let split = endpoints.split {
                out.field("Traffic Split", split.map { "\($0.revision) \($0.weight)%" }.joined(separator: ", "))
            }
        }
    }

    mutating func authorizationPolicy(_ policy: AuthorizationPolicy, serviceExists: Bool, now: Date) {
        metadata(policy.metadata, namespaced: true, now: now)
        field("Service", policy.spec.service + (serviceExists ? "" : " (no such service in namespace \(policy.namespace) yet)"))
        section("Allow") { out in
            if policy.spec.allow.isEmpty { out.lines("<no rules: every source is denied>") }
            for (i, rule) in policy.spec.allow.enumerated() {
                out.field("[\(i)]", ResourceView.ruleText(rule, namespace: policy.namespace))
            }
        }
    }

    mutating func peerAuthentication(_ peerAuthentication: PeerAuthentication, now: Date) {
        metadata(peerAuthentication.metadata, namespaced: true, now: now)
        let namespace = peerAuthentication.namespace
        let meaning: String
        switch peerAuthentication.spec.mtls.mutualTLSMode {
        case .strict: meaning = " (services in namespace \(namespace) refuse sources without a mesh identity)"
        case .permissive: meaning = " (sources without a mesh identity are accepted unless another PeerAuthentication in \(namespace) says STRICT)"
        case nil: meaning = ""
        }
        field("mTLS Mode", peerAuthentication.spec.mtls.mode + meaning)
    }

    mutating func configMap(_ configMap: ConfigMap, now: Date) {
        metadata(configMap.metadata, namespaced: true, now: now)
        section("Data") { out in
            let data = configMap.data ?? [:]
            if data.isEmpty { out.lines("<none>") }
            for (key, value) in data.sorted(by: { $0.key < $1.key }) {
                out.section(key) { out in out.lines(value.isEmpty ? "\"\"" : value) }
            }
        }
    }

    /// Keys and sizes only: values never reach the terminal.
    mutating func secret(_ secret: Secret, now: Date) {
        metadata(secret.metadata, namespaced: true, now: now)
        field("Type", secret.resolvedType)
        section("Data") { out in
            let contents = secret.contents
            if contents.isEmpty { out.lines("<none>") }
            for (key, value) in contents.sorted(by: { $0.key < $1.key }) {
                out.field(key, "\(value.count) bytes")
            }
        }
    }

    mutating func node(_ node: Node, replicas: [Replica], now: Date) {
        metadata(node.metadata, namespaced: false, now: now)
        field("Status", ResourceView.nodeStatus(node) + (node.status?.message.map { " (\($0))" } ?? ""))
        field("Schedulable", node.spec?.unschedulable == true ? "false" : "true")
        field("Taints", (node.spec?.taints ?? []).isEmpty ? nil
            : (node.spec?.taints ?? []).map { "\($0.key)\($0.value.map { "=\($0)" } ?? ""):\($0.effect)" }.joined(separator: ", "))
        field("Addresses", node.status?.addresses.map { $0.joined(separator: ", ") })
        field("Runtime", node.status?.runtime)
        field("Pod CIDR", node.status?.podCIDR)
        field("Capacity", Self.resourceList(node.status?.capacity))
        let usage = NodeUsage.of(nodes: [node], replicas: replicas)[node.name] ?? NodeUsage()
        var allocated = "cpu=\(NodeUsage.cpuText(usage.cpuMillicores)), memory=\(NodeUsage.memoryText(usage.memoryBytes))"
        if let cpu = node.status?.capacity?.cpu.flatMap(Quantity.millicores), cpu > 0,
           let memory = node.status?.capacity?.memory.flatMap(Quantity.bytes), memory > 0 {
            allocated += " (\(usage.cpuMillicores * 100 / Int64(cpu))% cpu, \(usage.memoryBytes * 100 / memory)% memory)"
        }
        field("Allocated", allocated)
        field("Last Heartbeat", node.status?.lastHeartbeat.map { "\($0) (\(Age.since($0, now: now)) ago)" })
        field("Version", node.status?.version)
        field("Tunnel", node.status?.tunnel.map { address in
            guard let c = node.status?.tunnelCounters else { return address }
            return "\(address) (connections \(c.connections), handshake failures \(c.handshakeFailures), streams \(c.streams), denied \(c.denied), failed \(c.failed))"
        })
        if let traffic = node.status?.traffic, !traffic.isEmpty {
            section("HTTP Traffic (since the agent started)") { out in
                let rows = traffic.sorted { $0.key < $1.key }.map { sample -> [String] in
                    let answered = sample.responses.reduce(0, +)
                    let p99 = sample.latency.value(atPercentile: 99).map { String(format: "%.1fms", Double($0) / 1000) } ?? "-"
                    return ["\(sample.service):\(sample.port)", sample.revision.isEmpty ? "-" : sample.revision, String(sample.requests),
                            String(answered - sample.serverErrors), String(sample.serverErrors), String(sample.failures), String(sample.retries), p99]
                }
                out.lines(Table(headers: ["SERVICE", "REVISION", "REQUESTS", "NON-5XX", "5XX", "NO ANSWER", "RETRIES", "P99"], rows: rows).render())
            }
        }
        section("Replicas") { out in
            if replicas.isEmpty {
                out.lines("<none>")
            } else {
                let objects = replicas.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }.compactMap { try? JSONValue.parse(JSONEncoder().encode($0)) }
                out.lines(ResourceView.table(.replica, objects, allNamespaces: true, now: now).render())
            }
        }
    }

    // MARK: - Formatting

    static func pairs(_ map: [String: String]?) -> String? {
        guard let map, !map.isEmpty else { return nil }
        return map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    static func resourceList(_ list: ResourceList?) -> String? {
        guard let list else { return nil }
        let parts = [list.cpu.map { "cpu=\($0)" }, list.memory.map { "memory=\($0)" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    static func probe(_ probe: Probe) -> String {
        var action = "?"
        if let http = probe.httpGet { action = "http-get :\(http.port)\(http.path ?? "/")" }
        if let tcp = probe.tcpSocket { action = "tcp-socket :\(tcp.port)" }
        if let exec = probe.exec { action = "exec \(shellWords(exec.command))" }
        return "\(action) delay=\(probe.initialDelay)s period=\(probe.period)s timeout=\(probe.timeout)s success=\(probe.successes) failure=\(probe.failures)"
    }

    /// Words joined with spaces, quoting any that would not survive a shell as they are.
    static func shellWords(_ words: [String]) -> String {
        words.map { word in
            let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,@%+".unicodeScalars.contains($0) }
            return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
