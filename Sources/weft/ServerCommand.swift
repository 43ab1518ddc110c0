import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import WeftAgent
import WeftClient
import WeftControlPlane
import WeftCore
import WeftDNS
import WeftPKI
import WeftStore

/// `weft server`: the control plane (API server, store, controllers) and a local node agent.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run a Weft control plane and a local node agent.",
        discussion: """
            State is kept in <data-dir>/state.db (SQLite); Secrets in it are encrypted with the key in \
            <data-dir>/secrets.key (mode 0600; back it up with the store). On first start the server creates a cluster CA, \
            a serving certificate and an API token under <data-dir>/pki, and writes <data-dir>/admin.yaml \
            for the CLI. It prints a line starting with `ready` once the API listens. SIGTERM or SIGINT stop \
            it gracefully: replicas are stopped (grace period, then SIGKILL) and the store is closed.
            """)

    @Option(name: .long, help: "Directory for the store, PKI, logs and admin.yaml.")
    var dataDir: String = "~/.weft"

    @Option(name: .long, help: "Address of the HTTPS API (HOST:PORT; port 0 picks a free port).")
    var apiListen: String = "127.0.0.1:7443"

    @Option(name: .long, help: "Name of this node (default: the host name).")
    var nodeName: String?

    @Option(name: .long, help: "Block of service virtual IPs (IPv4 CIDR, /8 to /30). The default lies in 127.0.0.0/8, which Linux routes to loopback, so the node proxy binds VIPs without root. Replicas of the netns runtime cannot reach loopback VIPs: give such a cluster a block outside 127.0.0.0/8 (e.g. 10.96.0.0/16), which netns nodes make local.")
    var serviceCidr: String = Registry.defaultServiceCIDR.description

    @OptionGroup var dnsOptions: DNSOptions

    @Option(name: .long, help: "SPIFFE trust domain of node and workload certificates (default: the cluster domain).")
    var trustDomain: String?

    @Option(name: .long, help: "Lifetime in seconds of node and workload certificates; they are renewed at half of it.")
    var svidTtl: Int = 86_400

    @OptionGroup var tunnel: TunnelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions

    @Flag(name: .long, help: "Run only the control plane, no local agent.")
    var noAgent = false

    @Option(name: .long, help: ArgumentHelp(
        "A node whose agent sends no heartbeat for this long becomes NotReady: its replicas leave every service and are replaced on other nodes. Agents renew every third of it (at most 5 s).",
        valueName: "seconds"))
    var nodeGrace: Double = 5

    @Option(name: .long, help: ArgumentHelp(
        "How the scheduler ranks nodes after spreading a deployment: leastAllocated (spread load) or mostAllocated (bin-pack).",
        valueName: "policy"))
    var schedulingPolicy: SchedulingPolicy = .leastAllocated

    @OptionGroup var log: LogOptions

    func run() async throws {
        try log.bootstrap()
        let logger = Logger(label: "weft.server")
        let dataDirectory = Paths.expand(dataDir)
        let (host, port) = try ListenAddress.parse(apiListen, option: "--api-listen")
        let node = nodeName ?? Self.defaultNodeName()
        if let problem = Validation.dnsLabelProblem(node) {
            throw ValidationError("--node-name: \(problem)")
        }

        let dns = try dnsOptions.configuration(logger: logger)
        let clusterDomain = dnsOptions.clusterDomain ?? DNSOptions.defaultClusterDomain
        let domain = trustDomain ?? clusterDomain
        do {
            _ = try SPIFFEID.node("probe", trustDomain: domain)
        } catch {
            throw ValidationError("--trust-domain: \(error)")
        }
        guard (10...(366 * 86_400)).contains(svidTtl) else {
            throw ValidationError("--svid-ttl: \(svidTtl) s is outside 10 s to 366 days")
        }

        guard nodeGrace.isFinite, (1...3600).contains(nodeGrace) else {
            throw ValidationError("--node-grace: \(nodeGrace) s is outside 1 s to 1 hour")
        }
        let grace = Duration.milliseconds(Int64(nodeGrace * 1000))
        guard let serviceBlock = IPv4CIDR(serviceCidr) else {
            throw ValidationError("--service-cidr: \"\(serviceCidr)\" is not an IPv4 block such as 127.10.0.0/16 (prefix 8 to 30, host bits zero)")
        }

        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let pki = try ClusterPKI.loadOrCreate(
            directory: (dataDirectory as NSString).appendingPathComponent("pki"),
            servingNames: ["localhost", node] + (IPAddressText.isValid(host) ? [] : [host]),
            servingIPs: ["127.0.0.1", "::1"] + (IPAddressText.isValid(host) && !["0.0.0.0", "::"].contains(host) ? [host] : []))
        let store = try SQLiteStore(path: (dataDirectory as NSString).appendingPathComponent("state.db"), logger: Logger(label: "weft.store"))
        // Secrets are encrypted in the store with this key (created on first start, mode 0600).
        let secretsKey = try SecretsKey.loadOrCreate(path: (dataDirectory as NSString).appendingPathComponent("secrets.key"))
        let registry = Registry(store: store, serviceCIDR: serviceBlock, secretsKey: secretsKey, logger: Logger(label: "weft.registry"))
        let logDirectory = (dataDirectory as NSString).appendingPathComponent("logs")
        let adminPath = (dataDirectory as NSString).appendingPathComponent("admin.yaml")

        let (listening, announce) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let signer = CertificateSigner(authorities: try MeshAuthorities(pkiDirectory: pki.directory, clusterAuthority: pki.ca),
                                       trustDomain: domain, validity: TimeInterval(svidTtl))
        let heartbeat = ClusterInfo.heartbeatInterval(grace: grace)
        let clusterInfo = ClusterInfo(certificateAuthority: pki.caCertificatePEM, trustDomain: domain, clusterDomain: clusterDomain,
                                      nodeGraceSeconds: nodeGrace, heartbeatIntervalSeconds: Self.seconds(heartbeat),
                                      serviceCIDR: serviceBlock.description)
        let api = try APIServer.make(
            configuration: APIServerConfiguration(host: host, port: port, certificatePath: pki.serverCertificatePath,
                                                  keyPath: pki.serverKeyPath, token: pki.token, clusterInfo: clusterInfo),
            registry: registry, logs: noAgent ? nil : LocalReplicaLogs(directory: logDirectory),
            signer: signer, enrollment: try NodeEnrollment(registry: registry, signer: signer, clusterAuthority: pki.ca),
            logger: Logger(label: "weft.api"),
            onListening: { address in
                let url = "https://\(ListenAddress.urlHost(host, bound: address)):\(address.port ?? port)"
                do {
                    try ClientConfig(server: url, token: pki.token, certificateAuthority: pki.caCertificatePEM).write(to: adminPath)
                } catch {
                    logger.error("cannot write admin.yaml", metadata: ["path": "\(adminPath)", "error": "\(error)"])
                }
                // Unbuffered, so a supervisor reading a pipe sees it at once.
                FileHandle.standardOutput.write(Data("ready \(url) config=\(adminPath) node=\(node)\n".utf8))
                announce.yield(url)
            })
        var services: [any ServiceLifecycle.Service] = [
            api,
            DeploymentController(registry: registry, policy: schedulingPolicy, logger: Logger(label: "weft.controller")),
            EndpointsController(registry: registry, logger: Logger(label: "weft.endpoints")),
            NodeLifecycleController(registry: registry, grace: grace, logger: Logger(label: "weft.nodes")),
        ]
        if !noAgent {
            var agent = AgentConfiguration(
                nodeName: node, stateDirectory: (dataDirectory as NSString).appendingPathComponent("agent"),
                logDirectory: logDirectory, heartbeatInterval: heartbeat, extraPath: [Paths.executableDirectory()],
                dns: dns, clusterDomain: clusterDomain, dnsTTL: dnsOptions.dnsTtl, trustDomain: domain,
                tunnelPort: tunnel.port)
            agent.runtime = runtimeOptions.defaultRuntime
            agent.podNetwork = runtimeOptions.podNetwork
            agent.serviceBlock = serviceBlock
            services.append(LocalAgent(configuration: agent, adminPath: adminPath, listening: listening, logger: Logger(label: "weft.agent")))
        }
        // Services stop in reverse order: the agent stops its replicas first, the API server last.
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        logger.info("stopped")
    }
}

extension ServerCommand {
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The host name's first label, lower-cased, with anything a DNS label cannot hold replaced by `-`.
    static func defaultNodeName() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let cleaned = String(host.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
            .trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return cleaned.isEmpty ? "node" : String(cleaned.prefix(63))
    }
}

/// Runs the node agent once the API server listens, with the admin credentials.
struct LocalAgent: ServiceLifecycle.Service {
    let configuration: AgentConfiguration
    let adminPath: String
    let listening: AsyncStream<String>
    let logger: Logger

    func run() async throws {
        var urls = listening.makeAsyncIterator()
        guard await urls.next() != nil else { return }
        let client = try APIClient(config: try ClientConfig.load(path: adminPath))
        do {
            try await NodeAgent(configuration: configuration, client: client, logger: logger, dnsListening: { address in
                FileHandle.standardOutput.write(Data("dns \(address) zone=svc.\(configuration.clusterDomain)\n".utf8))
            }).run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        // Closing idle TLS connections can wait seconds for the peer's close_notify; the process is
        // ending, so give it a moment and move on (the task keeps the client alive until it is done).
        let closing = Task { try? await client.shutdown() }
        try? await Task.sleep(for: .milliseconds(300))
        _ = closing
    }
}

extension SchedulingPolicy: ExpressibleByArgument {}
