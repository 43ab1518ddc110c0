import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import WeftAgent
import WeftClient
import WeftCore
import WeftPKI

/// `weft agent`: a node that joins a cluster and runs the replicas the control plane assigns to it — the
/// same agent `weft server` runs locally, with a node credential instead of the admin token.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Join a cluster as a node and run the replicas assigned to it.",
        discussion: """
            The first start joins: `weft token create` on the server prints the command line. The agent fetches \
            the cluster CA, checks it against the hash in the token (a mismatch stops it before the token or \
            anything else about the node is sent), and joins with the token and a CSR for spiffe://<trust-domain>/node/<name> made with a key \
            that never leaves the node. The server answers the node certificate and a node credential, kept in \
            <data-dir>/node.yaml (0600); later starts use it and need no token. The node registers its \
            capacity and labels, heartbeats, and runs its replicas with their node proxy and DNS server. \
            It prints a line starting with `ready` once it runs. SIGTERM or SIGINT stop it and its replicas.
            """)

    @Option(name: .long, help: ArgumentHelp("The API server, e.g. https://10.0.0.1:7443 (needed to join; afterwards the one in node.yaml).", valueName: "url"))
    var server: String?

    @Option(name: .long, help: ArgumentHelp("Join token from `weft token create` (first start only).", valueName: "token"))
    var token: String?

    @Option(name: .long, help: "Name of this node (default: the host name; afterwards the one it joined as).")
    var nodeName: String?

    @Option(name: .long, help: ArgumentHelp("The address replicas on this node listen on and are reached at (an IP of this machine).", valueName: "ip"))
    var nodeIp: String = "127.0.0.1"

    @Option(name: .long, help: ArgumentHelp("Capacity the scheduler may fill, e.g. cpu=4,memory=8Gi (default: this machine's processors and memory).", valueName: "list"))
    var capacity: String?

    @Option(name: .long, help: ArgumentHelp("Node labels, e.g. zone=a,disk=ssd (for nodeSelector and topology.weft.io/zone).", valueName: "list"))
    var labels: String = ""

    @Option(name: .long, help: "Directory for the node credential, identity, replica state and logs.")
    var dataDir: String = "~/.weft-agent"

    @OptionGroup var dnsOptions: DNSOptions
    @OptionGroup var tunnel: TunnelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions

    @Flag(name: .long, help: "Bind no service VIP listeners: this node runs replicas (and takes streams to them) but serves no VIPs. For a second agent on the machine of another one (e.g. next to `weft server`'s own agent): both would otherwise bind the same VIPs.")
    var noServiceListeners = false

    @OptionGroup var log: LogOptions

    func validate() throws {
        if let capacity {
            do { _ = try NodeSettingsText.capacity(capacity) } catch { throw ValidationError("--capacity: \(error)") }
        }
        do { _ = try NodeSettingsText.labels(labels) } catch { throw ValidationError("--labels: \(error)") }
        guard IPAddressText.isValid(nodeIp) else {
            throw ValidationError("--node-ip: \"\(nodeIp)\" is not an IP address such as 10.0.0.2 or 127.0.0.2")
        }
        if let nodeName, let problem = Validation.dnsLabelProblem(nodeName) {
            throw ValidationError("--node-name: \(problem)")
        }
        if let token {
            do { _ = try JoinToken(parsing: token) } catch let error as PKIError { throw ValidationError("--token: \(error.reason)") }
        }
    }

    func run() async throws {
        try log.bootstrap()
        let logger = Logger(label: "weft.agent")
        let dns = try dnsOptions.configuration(logger: logger)
        let directory = Paths.expand(dataDir)
        try await reportingErrors {
            try SecureFile.createDirectory(directory, mode: 0o700)
            let (config, node) = try await membership(directory: directory, logger: logger)
            let client = try APIClient(config: config)
            do {
                let info = try await clusterInfo(client, logger: logger)
                do {
                    _ = try await client.get(Node.self, namespace: nil, name: node)
                } catch let error as APIError where error.status == 401 {
                    throw ClientError("the server refused this node's credential (\(error.message)); if node \"\(node)\" was deleted, remove \(NodeMembership.credentialPath(stateDirectory: directory)) and join again with a new token")
                }
                if let asked = dnsOptions.clusterDomain, asked != info.clusterDomain {
                    throw ValidationError("--cluster-domain: \"\(asked)\" is not the cluster's (\"\(info.clusterDomain)\"); omit it to use the cluster's")
                }
                var agent = AgentConfiguration(
                    nodeName: node, nodeAddress: nodeIp, stateDirectory: directory,
                    logDirectory: (directory as NSString).appendingPathComponent("logs"),
                    heartbeatInterval: .milliseconds(Int64(info.heartbeatIntervalSeconds * 1000)),
                    extraPath: [Paths.executableDirectory()], labels: try NodeSettingsText.labels(labels),
                    dns: dns, clusterDomain: info.clusterDomain, dnsTTL: dnsOptions.dnsTtl, trustDomain: info.trustDomain,
                    tunnelPort: tunnel.port, capacity: try capacity.map(NodeSettingsText.capacity), serviceListeners: !noServiceListeners)
                agent.runtime = runtimeOptions.defaultRuntime
                agent.podNetwork = runtimeOptions.podNetwork
                agent.serviceBlock = info.serviceCIDR.flatMap(IPv4CIDR.init)
                let service = NodeAgent(configuration: agent, client: client, logger: logger, dnsListening: { address in
                    FileHandle.standardOutput.write(Data("dns \(address) zone=svc.\(info.clusterDomain)\n".utf8))
                })
                FileHandle.standardOutput.write(Data("ready node=\(node) server=\(config.server) address=\(nodeIp)\n".utf8))
                let group = ServiceGroup(configuration: .init(services: [.init(service: service)],
                                                              gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            } catch {
                try? await client.shutdown()
                throw error
            }
            try? await client.shutdown()
            logger.info("stopped")
        }
    }

    /// The stored membership, or a new one from `--server` and `--token`.
    private func membership(directory: String, logger: Logger) async throws -> (ClientConfig, String) {
        if let (stored, node) = try NodeMembership.load(stateDirectory: directory) {
            if let nodeName, nodeName != node {
                throw ClientError("\(directory) belongs to node \"\(node)\", not \"\(nodeName)\"; omit --node-name, or use another --data-dir for another node")
            }
            if token != nil { logger.info("already joined; --token is not needed", metadata: ["node": "\(node)"]) }
            var config = stored
            if let server, server != stored.server {
                config.server = server
                try config.write(to: NodeMembership.credentialPath(stateDirectory: directory))
                logger.info("server address changed", metadata: ["from": "\(stored.server)", "to": "\(server)"])
            }
            return (config, node)
        }
        guard let server, let token else {
            throw ClientError("this node has not joined a cluster yet (no \(NodeMembership.credentialPath(stateDirectory: directory))): pass --server URL and --token TOKEN from `weft token create`")
        }
        let node = nodeName ?? ServerCommand.defaultNodeName()
        let config = try await NodeMembership.join(server: server, token: try JoinToken(parsing: token), nodeName: node,
                                                   stateDirectory: directory, logger: logger)
        return (config, node)
    }

    /// The cluster's settings; waits (with backoff) while the server is unreachable, since the agent has
    /// nothing to run before it has heard from it.
    private func clusterInfo(_ client: APIClient, logger: Logger) async throws -> ClusterInfo {
        var delay = RetryDelay()
        while true {
            do {
                return try await client.clusterInfo()
            } catch let error as APIError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let wait = delay.next()
                logger.warning("cannot reach the API server; retrying", metadata: ["error": "\(error)", "retryIn": "\(wait)"])
                try await Task.sleep(for: wait)
            }
        }
    }
}
