import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftClient
import WeftCore
import WeftDNS
import WeftPKI
import WeftProxy
import WeftRuntime

/// The node agent: registers its node, keeps its heartbeat, and runs the replicas the control plane
/// assigns to it, learning of them by watch. On shutdown it stops its replicas.
public struct NodeAgent: ServiceLifecycle.Service {
    let configuration: AgentConfiguration
    let client: APIClient
    let logger: Logger
    let dnsListening: @Sendable (String) -> Void

    /// `dnsListening` receives the DNS server's `host:port` once it listens.
    public init(configuration: AgentConfiguration, client: APIClient, logger: Logger, dnsListening: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.dnsListening = dnsListening
    }

    public func run() async throws {
        let tls = MeshTLS()
        let logger = self.logger
        let nodeIdentity = try configuration.trustDomain.map {
            NodeIdentity(identity: try SPIFFEID.node(configuration.nodeName, trustDomain: $0),
                         directory: configuration.identityDirectory, client: client, logger: logger,
                         issued: { credentials in
                             do {
                                 try tls.update(credentials)
                             } catch {
                                 logger.error("cannot use the new node certificate for the tunnel", metadata: ["error": "\(error)"])
                             }
                         })
        }
        let ledger = try ProcessLedger(directory: configuration.stateDirectory, logger: logger)
        await ledger.killLeftovers(grace: .seconds(5))
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let mesh = MeshAuthorization(nodeName: configuration.nodeName, trustDomain: configuration.trustDomain)
        // DNS listens before any replica starts, so each one is told where it is; the tunnel before the
        // first heartbeat, which announces it.
        let dns: DNSServer?
        let inbound: TunnelInbound?
        do {
            dns = try await startDNS(group: proxyGroup)
            inbound = try await startTunnel(group: proxyGroup, tls: tls, mesh: mesh)
        } catch {
            try? await proxyGroup.shutdownGracefully()
            throw error
        }
        let workloads = LocalWorkloads()
        let identities = configuration.trustDomain.map {
            WorkloadIdentities(trustDomain: $0, directory: (configuration.identityDirectory as NSString).appendingPathComponent("workloads"),
                               client: client, logger: logger)
        }
        let context = AgentContext(configuration: configuration, client: client, ports: PortAllocator(host: configuration.nodeAddress),
                                   ledger: ledger, backoff: RestartBackoff(), eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                                   dnsAddress: dns.map { Self.replicaAddress(of: $0.localAddress, nodeAddress: configuration.nodeAddress) },
                                   workloads: workloads, identities: identities, logger: logger)
        let supervisor = ReplicaSupervisor(context: context)
        let proxy = NodeProxy(group: proxyGroup, logger: logger, mesh: MeshRouting(
            tunnels: TunnelClient(tls: tls, logger: logger),
            sourceIdentity: { remote, local in workloads.identity(remote: remote, local: local) }))
        let routing = ServiceRouting(proxy: proxy, dns: dns.map { ($0, try! DNSName(configuration.clusterDomain), configuration.dnsTTL) },
                                     mesh: mesh, serviceListeners: configuration.serviceListeners, logger: logger)
        let tunnelAddress = inbound?.localAddress.map { Self.replicaAddress(of: $0, nodeAddress: configuration.nodeAddress) }
        await withDiscardingTaskGroup { group in
            if let nodeIdentity {
                group.addTask { await nodeIdentity.run() }
                group.addTask {
                    await TrustFollower(client: self.client, tls: tls, node: nodeIdentity, workloads: identities,
                                        interval: self.configuration.trustRefreshInterval, logger: logger).run()
                }
            }
            group.addTask { await self.heartbeat(tunnel: tunnelAddress, inbound: inbound, proxy: proxy) }
            group.addTask { await self.watchReplicas(supervisor) }
            group.addTask { await routing.run(client: self.client) }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await supervisor.stopAll()
        await identities?.stop()
        logger.info("agent stopped its replicas")
        await inbound?.shutdown()
        await proxy.shutdown()
        await dns?.shutdown()
        try? await proxyGroup.shutdownGracefully()
    }

    /// The inbound mTLS tunnel port on the node's address, when the node has an identity to present.
    private func startTunnel(group: any EventLoopGroup, tls: MeshTLS, mesh: MeshAuthorization) async throws -> TunnelInbound? {
        guard let port = configuration.tunnelPort, configuration.trustDomain != nil else { return nil }
        return try await TunnelInbound.start(host: configuration.nodeAddress, port: port, group: group, tls: tls,
                                             authorize: { mesh.decide($0) }, logger: logger)
    }

    private func startDNS(group: any EventLoopGroup) async throws -> DNSServer? {
        guard let settings = configuration.dns else { return nil }
        let domain = try DNSName(configuration.clusterDomain)
        let empty = try ClusterZone(clusterDomain: domain, ttl: configuration.dnsTTL, serial: 0, services: [], endpoints: [:])
        let server = try await DNSServer.start(configuration: settings, zone: empty, group: group, logger: logger)
        dnsListening(server.listeningDescription)
        return server
    }

    /// Where replicas reach the DNS server: a wildcard listen address is reached on the node's address.
    static func replicaAddress(of address: SocketAddress, nodeAddress: String) -> String {
        let port = address.port ?? 53
        switch address.ipAddress {
        case "0.0.0.0"?, "::"?, nil: return nodeAddress.contains(":") ? "[\(nodeAddress)]:\(port)" : "\(nodeAddress):\(port)"
        case let ip?: return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    /// The label every node has, with its name as the value.
    public static let nodeNameLabel = "weft.io/node"

    private func nodeObject(tunnel: String?, inbound: TunnelInbound?, proxy: NodeProxy) -> Node {
        var metadata = ObjectMeta(name: configuration.nodeName)
        // Every node carries its own name as a label, for nodeSelector (as kubernetes.io/hostname).
        metadata.labels = configuration.labels.merging([Self.nodeNameLabel: configuration.nodeName]) { given, _ in given }
        let capacity = configuration.capacity ?? ResourceList(cpu: String(ProcessInfo.processInfo.activeProcessorCount),
                                                              memory: "\(ProcessInfo.processInfo.physicalMemory / 1024 / 1024)Mi")
        var status = NodeStatus(ready: true, addresses: [configuration.nodeAddress], capacity: capacity,
                                lastHeartbeat: Date().formatted(.iso8601), version: weftVersion,
                                tunnel: tunnel, tunnelCounters: inbound.map { Self.counters($0.counters()) })
        // What the proxy saw of each version of each HTTP service port: canary analysis reads it.
        let traffic = proxy.trafficSamples()
        status.traffic = traffic.isEmpty ? nil : traffic
        return Node(metadata: metadata, status: status)
    }

    static func counters(_ c: TunnelInbound.Counters) -> TunnelCounters {
        TunnelCounters(connections: c.connections, handshakeFailures: c.handshakeFailures, streams: c.streams, denied: c.denied, failed: c.failed)
    }

    private func heartbeat(tunnel: String?, inbound: TunnelInbound?, proxy: NodeProxy) async {
        while !Task.isCancelled {
            do {
                try await client.putNode(nodeObject(tunnel: tunnel, inbound: inbound, proxy: proxy))
            } catch {
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Runs the replicas assigned to this node, as the replica watch reports them.
    private func watchReplicas(_ supervisor: ReplicaSupervisor) async {
        await ListWatch(Replica.self, client: client, node: configuration.nodeName, logger: logger).run(
            relisted: { await supervisor.resync($0) },
            changed: { event in
                switch event {
                case .added(let replica), .modified(let replica):
                    await supervisor.observe(replica)
                case .deleted(let replica):
                    await supervisor.removed(namespace: replica.namespace, name: replica.name)
                case .bookmark:
                    break
                }
            })
    }
}

/// The version this build reports.
public let weftVersion = "0.1.0"
