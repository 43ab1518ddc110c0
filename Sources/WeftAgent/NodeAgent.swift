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
        let volumes = ConfigVolumes(stateDirectory: configuration.stateDirectory)
        volumes.removeAll()
        // The netns driver: leftovers of a crashed agent are removed, then the bridge is set up, before
        // DNS listens on the bridge address and before any replica starts.
        let (netns, netnsUnavailable) = try await startNetnsDriver()
        let (oci, ociUnavailable) = await startOCIDriver(netnsUnavailable: netnsUnavailable)
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let mesh = MeshAuthorization(nodeName: configuration.nodeName, trustDomain: configuration.trustDomain)
        // DNS listens before any replica starts, so each one is told where it is; the tunnel before the
        // first heartbeat, which announces it.
        var dns: DNSServer?
        var podDNS: DNSServer?
        let inbound: TunnelInbound?
        do {
            dns = try await startDNS(group: proxyGroup)
            if let netns, let settings = configuration.dns {
                // Replicas in their own namespace ask the bridge address, port 53: resolv.conf names no port.
                podDNS = try await startDNS(group: proxyGroup, configuration: DNSServerConfiguration(
                    host: netns.network.gateway.description, port: 53, upstreams: settings.upstreams))
            }
            inbound = try await startTunnel(group: proxyGroup, tls: tls, mesh: mesh)
        } catch {
            await dns?.shutdown()
            await podDNS?.shutdown()
            await netns?.tearDownNode()
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
                                   netns: netns, netnsUnavailable: netnsUnavailable, oci: oci, ociUnavailable: ociUnavailable, podDNSAddress: podDNS.map { _ in netns!.dnsAddress },
                                   workloads: workloads, identities: identities, volumes: volumes, logger: logger)
        let supervisor = ReplicaSupervisor(context: context)
        let proxy = NodeProxy(group: proxyGroup, logger: logger, mesh: MeshRouting(
            tunnels: TunnelClient(tls: tls, logger: logger),
            sourceIdentity: { remote, local in workloads.identity(remote: remote, local: local) }))
        let routing = ServiceRouting(proxy: proxy, dns: dns.map { ([$0] + (podDNS.map { [$0] } ?? []), try! DNSName(configuration.clusterDomain), configuration.dnsTTL) },
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
            group.addTask { await self.heartbeat(tunnel: tunnelAddress, inbound: inbound, proxy: proxy, netns: netns != nil, oci: oci != nil) }
            group.addTask { await self.watchReplicas(supervisor) }
            group.addTask { await routing.run(client: self.client) }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await supervisor.stopAll()
        await oci?.tearDownNode()
        await identities?.stop()
        logger.info("agent stopped its replicas")
        await inbound?.shutdown()
        await proxy.shutdown()
        await dns?.shutdown()
        await podDNS?.shutdown()
        await netns?.tearDownNode()
        try? await proxyGroup.shutdownGracefully()
    }

    /// The node's netns driver with its bridge up, when it has a pod network and can run it; else why
    /// replicas asking for it cannot run here (they then stay Pending with that reason).
    private func startNetnsDriver() async throws -> (NetnsDriver?, String?) {
        guard let network = configuration.podNetwork else {
            if NetnsDriverSupport.unavailableReason() == nil, let ip = NetnsDriverSupport.findIP() {
                await NetnsDriver.removeLeftovers(stateDirectory: configuration.stateDirectory, ipPath: ip, logger: logger)
            }
            return (nil, "node \(configuration.nodeName) has no pod network; start its agent with --pod-cidr (e.g. 10.244.1.0/24) to run replicas with runtime: netns")
        }
        if let reason = NetnsDriverSupport.unavailableReason() {
            logger.warning("the netns runtime is unavailable; replicas asking for it stay pending", metadata: ["reason": "\(reason)"])
            return (nil, reason)
        }
        let driver = try NetnsDriver(network: network, ipPath: NetnsDriverSupport.findIP()!, serviceBlock: configuration.serviceBlock,
                                     nodeName: configuration.nodeName, clusterDomain: configuration.clusterDomain,
                                     stateDirectory: configuration.stateDirectory, logger: logger)
        try await driver.prepareNode()
        if driver.serviceBlock == nil {
            logger.warning("service VIPs are not reachable from netns replicas: the cluster's service CIDR lies in 127.0.0.0/8 (or the server did not say); start weft server with --service-cidr outside it, e.g. 10.96.0.0/16",
                           metadata: ["serviceBlock": "\(configuration.serviceBlock.map(\.description) ?? "unknown")"])
        }
        logger.info("netns runtime ready", metadata: ["bridge": "\(NodeBridge.name)", "podNetwork": "\(network)",
                                                      "gateway": "\(network.gateway)", "serviceBlock": "\(driver.serviceBlock.map(\.description) ?? "loopback")"])
        return (driver, nil)
    }

    /// The node's oci driver with the leftovers of a previous agent removed, when it can run here; else
    /// why replicas asking for it cannot (they then stay Pending with that reason).
    private func startOCIDriver(netnsUnavailable: String?) async -> (OCIDriver?, String?) {
        let runcPath = OCIDriverSupport.findRunc()
        let version = CgroupVersion.current()
        let reason = OCIDriverSupport.unavailableReason(uid: geteuid(), runcPath: runcPath, netnsUnavailable: netnsUnavailable,
                                                        missingControllers: OCIDriverSupport.missingControllers(version: version))
        if let reason {
            logger.info("the oci runtime is unavailable; replicas asking for it stay pending", metadata: ["reason": "\(reason)"])
            return (nil, reason)
        }
        do {
            let driver = try OCIDriver(runcPath: runcPath!, stateDirectory: configuration.stateDirectory, nodeName: configuration.nodeName, logger: logger)
            await driver.removeLeftovers()
            logger.info("oci runtime ready", metadata: ["runc": "\(runcPath!)", "cgroups": "\(version)", "images": "\(driver.images.directory)"])
            return (driver, nil)
        } catch {
            logger.warning("the oci runtime is unavailable; replicas asking for it stay pending", metadata: ["error": "\(error)"])
            return (nil, "cannot set up the oci runtime: \(error)")
        }
    }

    /// The inbound mTLS tunnel port on the node's address, when the node has an identity to present.
    private func startTunnel(group: any EventLoopGroup, tls: MeshTLS, mesh: MeshAuthorization) async throws -> TunnelInbound? {
        guard let port = configuration.tunnelPort, configuration.trustDomain != nil else { return nil }
        return try await TunnelInbound.start(host: configuration.nodeAddress, port: port, group: group, tls: tls,
                                             authorize: { mesh.decide($0) }, logger: logger)
    }

    /// The node's DNS server (`--dns-listen`), or one with other `settings` (the pods' on the bridge).
    private func startDNS(group: any EventLoopGroup, configuration other: DNSServerConfiguration? = nil) async throws -> DNSServer? {
        guard let settings = other ?? configuration.dns else { return nil }
        let domain = try DNSName(configuration.clusterDomain)
        let empty = try ClusterZone(clusterDomain: domain, ttl: configuration.dnsTTL, serial: 0, services: [], endpoints: [:])
        let server = try await DNSServer.start(configuration: settings, zone: empty, group: group, logger: logger)
        if other == nil { dnsListening(server.listeningDescription) }
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

    /// The label (value `true`) of nodes whose agent runs the netns runtime, for `nodeSelector`.
    public static let netnsLabel = "weft.io/netns"

    /// The label (value `true`) of nodes whose agent runs the oci runtime, for `nodeSelector`.
    public static let ociLabel = "weft.io/oci"

    private func nodeObject(tunnel: String?, inbound: TunnelInbound?, proxy: NodeProxy, netns: Bool, oci: Bool) -> Node {
        var metadata = ObjectMeta(name: configuration.nodeName)
        // Every node carries its own name as a label, for nodeSelector (as kubernetes.io/hostname).
        var automatic = [Self.nodeNameLabel: configuration.nodeName]
        if netns { automatic[Self.netnsLabel] = "true" }
        if oci { automatic[Self.ociLabel] = "true" }
        metadata.labels = configuration.labels.merging(automatic) { given, _ in given }
        let capacity = configuration.capacity ?? ResourceList(cpu: String(ProcessInfo.processInfo.activeProcessorCount),
                                                              memory: "\(ProcessInfo.processInfo.physicalMemory / 1024 / 1024)Mi")
        var status = NodeStatus(ready: true, addresses: [configuration.nodeAddress], capacity: capacity,
                                lastHeartbeat: Date().formatted(.iso8601), version: weftVersion,
                                tunnel: tunnel, tunnelCounters: inbound.map { Self.counters($0.counters()) },
                                runtime: configuration.runtime.rawValue, podCIDR: configuration.podNetwork?.description)
        // What the proxy saw of each version of each HTTP service port: canary analysis reads it.
        let traffic = proxy.trafficSamples()
        status.traffic = traffic.isEmpty ? nil : traffic
        return Node(metadata: metadata, status: status)
    }

    static func counters(_ c: TunnelInbound.Counters) -> TunnelCounters {
        TunnelCounters(connections: c.connections, handshakeFailures: c.handshakeFailures, streams: c.streams, denied: c.denied, failed: c.failed)
    }

    private func heartbeat(tunnel: String?, inbound: TunnelInbound?, proxy: NodeProxy, netns: Bool, oci: Bool) async {
        while !Task.isCancelled {
            do {
                try await client.putNode(nodeObject(tunnel: tunnel, inbound: inbound, proxy: proxy, netns: netns, oci: oci))
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
