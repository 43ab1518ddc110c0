import Foundation
import Logging
import NIOCore
import NIOPosix
import WeftClient
import WeftCore
import WeftPKI
import WeftRuntime

/// Runs one replica on this node for as long as it is assigned here: allocates its ports, starts its
/// process, probes it, restarts it with backoff when it exits or fails liveness, and reports status.
///
/// With the netns driver every start gets a sandbox of its own (namespace, veth, an address from the
/// pod network), removed when the process exits: a restarted replica comes back at a new address. The
/// oci driver runs each start as a runc container in such a sandbox, inside the replica's cgroup.
actor ReplicaRunner {
    let key: String
    private(set) var replica: Replica
    private let context: AgentContext
    private let reporter: StatusReporter
    /// The driver chosen for this replica: its template's `runtime`, else the node's.
    let runtime: WorkloadRuntime
    /// The port of each declared port: a host port (process driver) or the port inside the replica's own
    /// network (netns driver: `containerPort`, else 8080 and up in declaration order).
    private let ports: [String: Int]
    /// True when `ports` came from the node's port allocator and must be given back.
    private let portsAllocated: Bool
    private var status: ReplicaStatus
    private var process: ReplicaProcess?
    /// The running incarnation's network namespace (netns driver).
    private var sandbox: PodSandbox?
    /// The replica's cgroup (oci driver), made at its first start and kept until it stops for good.
    private var cgroup: ReplicaCgroup?
    /// The running container's process id on the host (oci driver).
    private var containerPID: Int?
    private var stopping = false
    /// The workload certificate files handed to the process, once acquired.
    private var svid: WorkloadIdentities.Files?
    private var acquiredSVID = false
    /// The variables from ConfigMaps and Secrets, as read for the running incarnation.
    private var configEnvironment: [String: String] = [:]
    /// The configuration the last start used, for restarts while the API cannot be reached.
    private var lastConfig: ReplicaConfig?

    init(replica: Replica, context: AgentContext) throws {
        self.key = "\(replica.namespace)/\(replica.name)"
        self.replica = replica
        self.context = context
        self.reporter = StatusReporter(client: context.client, namespace: replica.namespace, replica: replica.name, logger: context.logger)
        let runtime = replica.spec.template.runtime.flatMap(WorkloadRuntime.init(rawValue:)) ?? context.configuration.runtime
        self.runtime = runtime
        var ports: [String: Int] = [:]
        if runtime == .netns || runtime == .oci {
            // The replica has its own address: every port is free, and none is taken from the node.
            for (index, port) in (replica.spec.template.ports ?? []).enumerated() {
                ports[port.name] = port.containerPort ?? 8080 + index
            }
            self.ports = ports
            self.portsAllocated = false
            self.status = ReplicaStatus(phase: .pending, ready: false, address: nil,
                                        ports: ports.isEmpty ? nil : ports, restarts: replica.status?.restarts ?? 0)
            return
        }
        do {
            for port in replica.spec.template.ports ?? [] {
                if let fixed = port.hostPort {
                    // The scheduler keeps two replicas holding the same host port off one node.
                    guard context.ports.reserve(fixed) else {
                        throw RuntimeError(code: .portAllocation, message: "host port \(fixed) of port \(port.name) is held by another replica on this node")
                    }
                    ports[port.name] = fixed
                } else {
                    ports[port.name] = try context.ports.allocate()
                }
            }
        } catch {
            for port in ports.values { context.ports.release(port) }
            throw error
        }
        self.ports = ports
        self.portsAllocated = true
        self.status = ReplicaStatus(phase: .pending, ready: false, address: context.configuration.nodeAddress,
                                    ports: ports.isEmpty ? nil : ports, restarts: replica.status?.restarts ?? 0)
    }

    /// Runs until `stop()`: the process is restarted whenever it exits.
    func run() async {
        if let identities = context.identities, !acquiredSVID {
            acquiredSVID = true
            svid = await identities.acquire(namespace: replica.namespace, serviceAccount: serviceAccount)
        }
        if runtime == .netns, let reason = context.netnsUnavailable {
            // Not a crash loop: nothing is started until the node can run the driver (an agent restart).
            publish(.pending, ready: false, message: "cannot run on node \(context.configuration.nodeName): \(reason)")
            context.logger.warning("replica stays pending", metadata: ["replica": "\(key)", "reason": "\(reason)"])
            while !stopping { try? await Task.sleep(for: .milliseconds(200)) }
            return
        }
        if runtime == .oci, let reason = context.ociUnavailable {
            publish(.pending, ready: false, message: "cannot run on node \(context.configuration.nodeName): \(reason)")
            context.logger.warning("replica stays pending", metadata: ["replica": "\(key)", "reason": "\(reason)"])
            while !stopping { try? await Task.sleep(for: .milliseconds(200)) }
            return
        }
        var crashes = 0
        while !stopping {
            if let missing = missingImage() {
                // Not a crash: the replica waits, Pending, until the image is imported on this node.
                if status.phase != .pending || status.message != missing {
                    context.logger.warning("replica waits for its image", metadata: ["replica": "\(key)", "reason": "\(missing)"])
                    publish(.pending, ready: false, message: missing)
                }
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let config = await awaitConfig() else { break }
            let started = ContinuousClock.now
            guard let process = await start(config: config) else {
                if stopping { break }
                crashes += 1
                await backoff(crashes: crashes)
                continue
            }
            var exit = await supervise(process)
            context.ledger.forget(key)
            context.workloads.exited(pid: process.pid, address: sandbox?.address.description)
            self.process = nil
            if runtime == .oci { exit = await containerExited(exit) }
            if stopping { break }
            await removeSandbox()
            crashes = context.backoff.crashesAfterExit(previous: crashes, runTime: ContinuousClock.now - started)
            status.restarts += 1
            status.lastExitStatus = exit.description
            status.ready = false
            status.pid = nil
            context.logger.info("replica process exited; restarting", metadata: ["replica": "\(key)", "exit": "\(exit)", "restarts": "\(status.restarts)"])
            await backoff(crashes: crashes)
        }
    }

    /// Stops the process (SIGTERM, the template's grace period, SIGKILL) and the run loop, and releases ports.
    func stop() async {
        stopping = true
        if let process {
            let grace = Duration.seconds(replica.spec.template.gracePeriodSeconds)
            let exit = await process.stop(grace: grace)
            status.lastExitStatus = (runtime == .oci ? ContainerProcess.containerExit(exit) : exit).description
            context.ledger.forget(key)
            context.workloads.exited(pid: process.pid, address: sandbox?.address.description)
        }
        if runtime == .oci, let driver = context.oci {
            await driver.remove(driver.containerID(namespace: replica.namespace, name: replica.name), cgroup: cgroup)
            cgroup = nil
        }
        await removeSandbox()
        context.volumes.remove(namespace: replica.namespace, replica: replica.name)
        if portsAllocated {
            for port in ports.values { context.ports.release(port) }
        }
        if acquiredSVID, let identities = context.identities {
            acquiredSVID = false
            await identities.release(namespace: replica.namespace, serviceAccount: serviceAccount)
        }
    }

    /// Stops reporting without waiting (the replica object is gone).
    func abandonStatus() { reporter.cancel() }

    /// Flushes pending status reports.
    func finishReporting() async { await reporter.finish() }

    func update(_ replica: Replica) { self.replica = replica }

    /// The replica's service account: its template's `serviceAccountName`, else its deployment's name.
    private var serviceAccount: String { replica.serviceAccount }

    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service account>`, when the node has a trust domain.
    private var workloadIdentity: SPIFFEID? {
        guard let trustDomain = context.configuration.trustDomain else { return nil }
        return try? SPIFFEID.workload(namespace: replica.namespace, serviceAccount: serviceAccount, trustDomain: trustDomain)
    }

    // MARK: - Steps

    private func publish(_ phase: ReplicaPhase, ready: Bool, message: String? = nil) {
        status.phase = phase
        status.ready = ready
        status.message = message
        reporter.report(status)
    }

    /// The address the replica's ports are reached at: its sandbox's, else the node's.
    private var replicaAddress: String { sandbox?.address.description ?? context.configuration.nodeAddress }

    /// Deletes the running incarnation's sandbox, if any, and frees its address.
    private func removeSandbox() async {
        guard let sandbox, let driver = context.netns else { return }
        self.sandbox = nil
        await driver.removeSandbox(sandbox)
    }

    /// The ConfigMaps and Secrets the replica uses, read afresh for each start. While one it needs is
    /// missing the replica stays Pending with the reason, and it is read again every `configRetry`. When
    /// the API cannot be reached, a restart uses what the last start read (static stability); a first
    /// start waits. Nil once stopping.
    private func awaitConfig() async -> ReplicaConfig? {
        let template = replica.spec.template
        guard !ConfigReferences(template).isEmpty else { return ReplicaConfig() }
        while !stopping {
            do {
                let config = try await ConfigVolumes.fetch(template, namespace: replica.namespace, client: context.client)
                // Resolving here reports a missing key before anything starts.
                configEnvironment = try config.environment(for: template)
                for volume in template.volumes ?? [] { _ = try config.files(of: volume) }
                lastConfig = config
                return config
            } catch let unavailable as ReplicaConfig.Unavailable {
                waitingForConfig(unavailable.description)
            } catch {
                if let lastConfig {
                    context.logger.warning("cannot read configuration; restarting with what the last start read",
                                           metadata: ["replica": "\(key)", "error": "\(error)"])
                    return lastConfig
                }
                waitingForConfig("cannot read configuration: \(error)")
            }
            try? await Task.sleep(for: context.configuration.configRetry)
        }
        return nil
    }

    private func waitingForConfig(_ reason: String) {
        guard status.phase != .pending || status.message != reason else { return }
        context.logger.warning("replica waits for its configuration", metadata: ["replica": "\(key)", "reason": "\(reason)"])
        publish(.pending, ready: false, message: reason)
    }

    private func start(config: ReplicaConfig) async -> ReplicaProcess? {
        let template = replica.spec.template
        do {
            try context.volumes.materialise(replica, config: config)
            let logDirectory = context.configuration.logDirectory(namespace: replica.namespace)
            try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            let log = try RotatingLog(directory: logDirectory, replica: replica.name)
            if runtime == .netns || runtime == .oci, sandbox == nil {
                guard let driver = context.netns else {
                    throw RuntimeError(code: .driverUnavailable, message: "node \(context.configuration.nodeName) has no netns driver")
                }
                sandbox = try await driver.createSandbox(replica: key, namespace: replica.namespace)
                if stopping {
                    await removeSandbox()
                    return nil
                }
            }
            var spec: ProcessSpec
            if runtime == .oci {
                spec = try await containerSpec()
            } else {
                let command = template.command ?? []
                spec = ProcessSpec(executable: command[0], arguments: Array(command.dropFirst()) + (template.args ?? []),
                                   environment: environment(), workingDirectory: template.workingDir)
                if let sandbox, let driver = context.netns { spec = sandbox.wrap(spec, ip: driver.bridge.ip) }
            }
            let process = try ReplicaProcess.start(spec, log: log, logger: context.logger)
            self.process = process
            context.ledger.record(key, process.identity)
            if let identity = workloadIdentity {
                context.workloads.started(pid: process.pid, identity: identity, address: sandbox?.address.description)
            }
            status.address = replicaAddress
            status.pid = Int(process.pid)
            if runtime == .oci, let driver = context.oci {
                containerPID = await driver.containerPID(id: driver.containerID(namespace: replica.namespace, name: replica.name))
                status.pid = containerPID ?? Int(process.pid)
            }
            status.startedAt = Date().formatted(.iso8601)
            if template.readinessProbe == nil {
                publish(.ready, ready: true)
            } else {
                publish(.starting, ready: false)
            }
            return process
        } catch {
            await removeSandbox()
            status.lastExitStatus = nil
            publish(.failing, ready: false, message: "cannot start: \(error)")
            context.logger.warning("cannot start replica", metadata: ["replica": "\(key)", "error": "\(error)"])
            return nil
        }
    }

    /// Waits for the process to exit, probing it meanwhile; a liveness failure stops it.
    private func supervise(_ process: ReplicaProcess) async -> ExitStatus {
        let template = replica.spec.template
        return await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await process.waitForExit() }
            if let probe = template.readinessProbe {
                group.addTask {
                    await self.probeLoop(probe, liveness: false)
                    return nil
                }
            }
            if let probe = template.livenessProbe {
                group.addTask {
                    await self.probeLoop(probe, liveness: true)
                    return nil
                }
            }
            var exit: ExitStatus = .exited(0)
            for await result in group {
                if let result {
                    exit = result
                    group.cancelAll()
                }
            }
            return exit
        }
    }

    private func probeLoop(_ probe: Probe, liveness: Bool) async {
        var tracker = ProbeTracker(successThreshold: probe.successes, failureThreshold: probe.failures, initiallyPassing: liveness)
        let action = probeAction(probe)
        var everPassed = false
        do {
            try await Task.sleep(for: .seconds(probe.initialDelay))
            while !Task.isCancelled {
                let result = await action.run(on: context.eventLoopGroup)
                let success: Bool
                var reason: String?
                switch result {
                case .success: success = true
                case .failure(let why): success = false; reason = why
                }
                if let changed = tracker.record(success: success) {
                    await probeChanged(passing: changed, liveness: liveness, reason: reason)
                    if liveness && !changed { return }
                }
                if success { everPassed = true }
                // Until a readiness probe first passes, probe every 100 ms: a replica joins its service as
                // soon as it listens instead of up to a whole period later. `failureThreshold` failures in a
                // row meanwhile are the first verdict: `Starting` becomes `Running` (not ready).
                try await Task.sleep(for: liveness || everPassed ? .seconds(probe.period) : min(.milliseconds(100), .seconds(probe.period)))
            }
        } catch {
            // Cancelled: the process exited.
        }
    }

    private func probeChanged(passing: Bool, liveness: Bool, reason: String?) async {
        guard !stopping, let process else { return }
        if liveness {
            context.logger.info("liveness probe failed; restarting replica", metadata: ["replica": "\(key)", "reason": "\(reason ?? "")"])
            status.message = "liveness probe failed: \(reason ?? "")"
            _ = await process.stop(grace: .seconds(replica.spec.template.gracePeriodSeconds))
        } else if passing {
            publish(.ready, ready: true)
        } else {
            publish(.running, ready: false, message: "readiness probe failed: \(reason ?? "")")
        }
    }

    private func backoff(crashes: Int) async {
        let delay = context.backoff.delay(consecutiveCrashes: crashes)
        if delay > .zero {
            publish(.failing, ready: false, message: status.message ?? "back-off \(delay) restarting after \(status.lastExitStatus ?? "failure")")
            try? await Task.sleep(for: delay)
        } else if !stopping {
            publish(.starting, ready: false, message: status.message)
        }
        status.message = nil
    }

    // MARK: - Containers (oci driver)

    /// Why the replica's image cannot be used on this node (not imported), or nil.
    private func missingImage() -> String? {
        guard runtime == .oci, let driver = context.oci, let name = replica.spec.template.image else { return nil }
        guard let reference = ImageReference(name) else { return "image \"\(name)\" is not a valid image name" }
        do {
            _ = try driver.images.image(reference, node: context.configuration.nodeName)
            return nil
        } catch let error as RuntimeError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// Writes the container's bundle and returns the `runc run` that runs it.
    private func containerSpec() async throws -> ProcessSpec {
        guard let driver = context.oci, let sandbox else {
            throw RuntimeError(code: .driverUnavailable, message: "node \(context.configuration.nodeName) has no oci driver")
        }
        let template = replica.spec.template
        let rootfs: String
        var imageConfig = ImageRuntimeConfig()
        if let name = template.image, let reference = ImageReference(name) {
            let image = try driver.images.image(reference, node: context.configuration.nodeName)
            rootfs = driver.images.rootfs(manifestDigest: image.manifestDigest)
            imageConfig = image.config
        } else if let directory = template.rootfs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw RuntimeError(code: .container, message: "rootfs \(directory) is not a directory on node \(context.configuration.nodeName)")
            }
            rootfs = directory
        } else {
            throw RuntimeError(code: .container, message: "runtime oci needs image or rootfs")
        }
        let arguments = imageConfig.arguments(command: template.command, args: template.args)
        guard !arguments.isEmpty else {
            throw RuntimeError(code: .container, message: "the image has no entrypoint or cmd; give command")
        }
        let id = driver.containerID(namespace: replica.namespace, name: replica.name)
        if cgroup == nil {
            let limit = template.resources?.limits?.memory.flatMap(Quantity.bytes)
            cgroup = try ReplicaCgroup(path: driver.cgroupPath(id), memoryLimit: limit, version: driver.cgroupVersion)
        }
        let user = try ContainerProcess.user(image: imageConfig.user, securityContext: template.securityContext, rootfs: rootfs)
        var mounts: [ContainerMount] = []
        var environment = environment(base: ContainerProcess.imageEnvironment(imageConfig.env))
        for volume in context.volumes.volumes(of: replica) {
            // A volume appears at its mountPath, else at its directory's path on the node; WEFT_VOLUME_<NAME>
            // names where the container sees it.
            let path = volume.mountPath ?? volume.hostDirectory
            mounts.append(ContainerMount(hostPath: volume.hostDirectory, containerPath: path, readOnly: volume.readOnly))
            environment["WEFT_VOLUME_" + volume.name.uppercased().replacingOccurrences(of: "-", with: "_")] = path
        }
        if let svid {
            // The workload certificate files appear at the paths WEFT_SVID_* name.
            mounts.append(ContainerMount(hostPath: svid.directory, containerPath: svid.directory))
        }
        let config = ContainerConfig(
            arguments: arguments, environment: environment,
            workingDirectory: template.workingDir ?? imageConfig.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/",
            user: user.uid, group: user.gid, hostname: replica.name, rootfs: rootfs,
            networkNamespace: "/run/netns/\(sandbox.names.namespace)",
            resolvConf: (PodSandbox.etcDirectory(namespace: sandbox.names.namespace) as NSString).appendingPathComponent("resolv.conf"),
            mounts: mounts, cpuMillicores: template.resources?.limits?.cpu.flatMap(Quantity.millicores),
            cgroupsPath: "\(driver.cgroupPath(id))/container")
        try await driver.writeBundle(id: id, config: config)
        return driver.runSpec(id: id)
    }

    /// After `runc run` ended: the container's exit status, why it ended (`OOMKilled` when its cgroup
    /// saw an OOM kill), and the container deleted.
    private func containerExited(_ exit: ExitStatus) async -> ExitStatus {
        let exit = ContainerProcess.containerExit(exit)
        containerPID = nil
        let oomKills = cgroup?.takeOOMKills() ?? 0
        status.lastExitReason = oomKills > 0 ? "OOMKilled" : exit.isSuccess ? "Completed" : "Error"
        if oomKills > 0 {
            status.message = "OOMKilled: the container used more than its memory limit \(replica.spec.template.resources?.limits?.memory ?? "")"
            context.logger.warning("replica container was OOM-killed", metadata: ["replica": "\(key)", "exit": "\(exit)"])
        }
        if let driver = context.oci { await driver.delete(driver.containerID(namespace: replica.namespace, name: replica.name)) }
        return exit
    }

    // MARK: - Inputs

    /// The replica's environment on top of `base`, or of the agent's PATH, HOME, LANG, TZ and TMPDIR.
    private func environment(base: [String: String]? = nil) -> [String: String] {
        let configuration = context.configuration
        var env: [String: String] = base ?? [:]
        if base == nil {
            let inherited = ProcessInfo.processInfo.environment
            env["PATH"] = (configuration.extraPath + [inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"]).joined(separator: ":")
            for name in ["HOME", "LANG", "TZ", "TMPDIR"] { env[name] = inherited[name] }
        }
        // envFrom and valueFrom, then literal values: `env` wins over `envFrom`, as in Kubernetes.
        env.merge(configEnvironment) { _, new in new }
        for variable in replica.spec.template.env ?? [] where variable.valueFrom == nil { env[variable.name] = variable.value ?? "" }
        env.merge(context.volumes.environment(of: replica)) { _, new in new }
        let declared = replica.spec.template.ports ?? []
        if let first = declared.first, let port = ports[first.name] { env["PORT"] = String(port) }
        for port in declared {
            if let number = ports[port.name] {
                env["PORT_" + port.name.uppercased().replacingOccurrences(of: "-", with: "_")] = String(number)
            }
        }
        env["WEFT_REPLICA_NAME"] = replica.name
        env["WEFT_NAMESPACE"] = replica.namespace
        env["WEFT_DEPLOYMENT"] = replica.spec.deployment
        env["WEFT_NODE"] = configuration.nodeName
        env["WEFT_REPLICA_IP"] = replicaAddress
        if let dns = sandbox != nil ? context.podDNSAddress : context.dnsAddress {
            env["WEFT_DNS"] = dns
            env["WEFT_CLUSTER_DOMAIN"] = configuration.clusterDomain
        }
        if let svid {
            env["WEFT_SPIFFE_ID"] = svid.identity.description
            env["WEFT_SVID_CERT"] = svid.certificate
            env["WEFT_SVID_KEY"] = svid.key
            env["WEFT_TRUST_BUNDLE"] = svid.bundle
        }
        return env
    }

    private func resolve(_ port: PortReference) -> Int {
        switch port {
        case .name(let name):
            return ports[name] ?? 0
        case .number(let number):
            if let declared = replica.spec.template.ports?.first(where: { $0.containerPort == number }), let allocated = ports[declared.name] {
                return allocated
            }
            return number
        }
    }

    private func probeAction(_ probe: Probe) -> ProbeAction {
        let timeout = Duration.seconds(probe.timeout)
        let host = replicaAddress
        if let http = probe.httpGet {
            return .httpGet(host: host, port: resolve(http.port), path: http.path ?? "/", timeout: timeout)
        }
        if let tcp = probe.tcpSocket {
            return .tcpConnect(host: host, port: resolve(tcp.port), timeout: timeout)
        }
        var command = probe.exec?.command ?? ["false"]
        if runtime == .oci, let driver = context.oci {
            command = driver.execCommand(id: driver.containerID(namespace: replica.namespace, name: replica.name), command)
        } else if let sandbox, let driver = context.netns {
            command = [driver.bridge.ip.path, "netns", "exec", sandbox.names.namespace] + command
        }
        return .exec(command: command, environment: environment(), timeout: timeout)
    }
}

/// What every runner on a node shares.
struct AgentContext: Sendable {
    let configuration: AgentConfiguration
    let client: APIClient
    let ports: PortAllocator
    let ledger: ProcessLedger
    let backoff: RestartBackoff
    let eventLoopGroup: any EventLoopGroup
    /// `host:port` of the node's DNS server, for replicas; nil when it runs none.
    let dnsAddress: String?
    /// The netns driver, when the node has a pod network and can run it.
    let netns: NetnsDriver?
    /// Why replicas asking for the netns driver cannot run here; nil when they can.
    let netnsUnavailable: String?
    /// The oci driver, when the node can run it.
    let oci: OCIDriver?
    /// Why replicas asking for the oci driver cannot run here; nil when they can.
    let ociUnavailable: String?
    /// `bridge-address:53`, where replicas in their own namespace reach the node's DNS; nil without DNS.
    let podDNSAddress: String?
    /// Running replica processes and their identities, for the node proxy.
    let workloads: LocalWorkloads
    /// Workload certificates for replicas; nil when the node has no trust domain.
    let identities: WorkloadIdentities?
    /// The files of replicas' ConfigMap and Secret volumes.
    let volumes: ConfigVolumes
    let logger: Logger
}
