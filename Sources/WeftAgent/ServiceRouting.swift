import Foundation
import Logging
import NIOCore
import WeftClient
import WeftCore
import WeftDNS
import WeftPKI
import WeftProxy

/// Feeds the node proxy and the node's DNS server from the cluster: a listener on `clusterIP:port` for
/// every port of every VIP service, with the service's ready endpoints as backends (those on other
/// nodes through the node's tunnel), and the cluster DNS zone; and tells the inbound tunnel which
/// endpoints are this node's. Services, endpoints and nodes arrive by watch; all are updated once per
/// burst of changes.
actor ServiceRouting {
    private let proxy: NodeProxy
    private let dns: (servers: [DNSServer], clusterDomain: DNSName, ttl: UInt32)?
    private let mesh: MeshAuthorization
    /// False: the proxy gets no VIP listeners (another agent on this machine serves the VIPs).
    private let serviceListeners: Bool
    private var zoneSerial = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970))
    private let logger: Logger
    private var services: [String: Service] = [:]
    private var endpoints: [String: Endpoints] = [:]
    private var nodes: [String: Node] = [:]
    private var policies: [String: AuthorizationPolicy] = [:]
    private var peerAuthentications: [String: PeerAuthentication] = [:]
    private var applied: ProxyConfiguration?
    private let dirty: AsyncStream<Void>.Continuation
    private let changes: AsyncStream<Void>

    init(proxy: NodeProxy, dns: (servers: [DNSServer], clusterDomain: DNSName, ttl: UInt32)?, mesh: MeshAuthorization,
         serviceListeners: Bool = true, logger: Logger) {
        self.proxy = proxy
        self.dns = dns
        self.mesh = mesh
        self.serviceListeners = serviceListeners
        self.logger = logger
        (changes, dirty) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Follows services and endpoints and keeps the proxy configured until cancelled.
    func run(client: APIClient) async {
        let serviceWatch = ListWatch(Service.self, client: client, logger: logger)
        let endpointsWatch = ListWatch(Endpoints.self, client: client, logger: logger)
        let nodeWatch = ListWatch(Node.self, client: client, logger: logger)
        let policyWatch = ListWatch(AuthorizationPolicy.self, client: client, logger: logger)
        let peerWatch = ListWatch(PeerAuthentication.self, client: client, logger: logger)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await policyWatch.run(relisted: { await self.replacePolicies($0) }, changed: { await self.policyChanged($0) })
            }
            group.addTask {
                await peerWatch.run(relisted: { await self.replacePeers($0) }, changed: { await self.peerChanged($0) })
            }
            group.addTask {
                await nodeWatch.run(relisted: { await self.replaceNodes($0) }, changed: { await self.nodeChanged($0) })
            }
            group.addTask {
                await serviceWatch.run(relisted: { await self.replaceServices($0) }, changed: { await self.serviceChanged($0) })
            }
            group.addTask {
                await endpointsWatch.run(relisted: { await self.replaceEndpoints($0) }, changed: { await self.endpointsChanged($0) })
            }
            group.addTask { await self.applyChanges() }
        }
    }

    private func replaceServices(_ items: [Service]) {
        services = Dictionary(items.map { ("\($0.namespace)/\($0.name)", $0) }, uniquingKeysWith: { $1 })
        dirty.yield()
    }

    private func replaceEndpoints(_ items: [Endpoints]) {
        endpoints = Dictionary(items.map { ("\($0.namespace)/\($0.name)", $0) }, uniquingKeysWith: { $1 })
        dirty.yield()
    }

    private func replacePolicies(_ items: [AuthorizationPolicy]) {
        policies = Dictionary(items.map { ("\($0.namespace)/\($0.name)", $0) }, uniquingKeysWith: { $1 })
        dirty.yield()
    }

    private func policyChanged(_ event: WatchEvent<AuthorizationPolicy>) {
        switch event {
        case .added(let object), .modified(let object): policies["\(object.namespace)/\(object.name)"] = object
        case .deleted(let object): policies["\(object.namespace)/\(object.name)"] = nil
        case .bookmark: return
        }
        dirty.yield()
    }

    private func replacePeers(_ items: [PeerAuthentication]) {
        peerAuthentications = Dictionary(items.map { ("\($0.namespace)/\($0.name)", $0) }, uniquingKeysWith: { $1 })
        dirty.yield()
    }

    private func peerChanged(_ event: WatchEvent<PeerAuthentication>) {
        switch event {
        case .added(let object), .modified(let object): peerAuthentications["\(object.namespace)/\(object.name)"] = object
        case .deleted(let object): peerAuthentications["\(object.namespace)/\(object.name)"] = nil
        case .bookmark: return
        }
        dirty.yield()
    }

    private func replaceNodes(_ items: [Node]) {
        nodes = Dictionary(items.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        dirty.yield()
    }

    private func nodeChanged(_ event: WatchEvent<Node>) {
        switch event {
        case .added(let node), .modified(let node):
            // Heartbeats change nodes every few seconds; only a new tunnel address matters here.
            let changed = nodes[node.name]?.status?.tunnel != node.status?.tunnel
            nodes[node.name] = node
            if changed { dirty.yield() }
        case .deleted(let node):
            nodes[node.name] = nil
            dirty.yield()
        case .bookmark:
            return
        }
    }

    private func serviceChanged(_ event: WatchEvent<Service>) {
        switch event {
        case .added(let service), .modified(let service): services["\(service.namespace)/\(service.name)"] = service
        case .deleted(let service): services["\(service.namespace)/\(service.name)"] = nil
        case .bookmark: return
        }
        dirty.yield()
    }

    private func endpointsChanged(_ event: WatchEvent<Endpoints>) {
        switch event {
        case .added(let object), .modified(let object): endpoints["\(object.namespace)/\(object.name)"] = object
        case .deleted(let object): endpoints["\(object.namespace)/\(object.name)"] = nil
        case .bookmark: return
        }
        dirty.yield()
    }

    /// Applies the newest configuration after each burst of changes. When the proxy refuses it (say, one
    /// port cannot be bound), every listener that can be served still is: listeners are added one at a
    /// time and the refused ones are retried later. The proxy serves its previous view meanwhile.
    private func applyChanges() async {
        var iterator = changes.makeAsyncIterator()
        var refused: [String: String] = [:]
        while await iterator.next() != nil {
            updateZone()
            let table = AuthorizationTable(policies: Array(policies.values), peerAuthentications: Array(peerAuthentications.values))
            mesh.update(table: table)
            mesh.update(localEndpoints: Self.localEndpoints(services: Array(services.values), endpoints: endpoints, node: mesh.nodeName))
            let desired = serviceListeners
                ? Self.configuration(services: Array(services.values), endpoints: endpoints,
                                     tunnels: Self.tunnels(nodes: nodes, trustDomain: mesh.trustDomain), node: mesh.nodeName,
                                     isProtected: { MeshAuthorization.isProtected($0, by: table) })
                : ProxyConfiguration(listeners: [])
            guard desired != applied else { continue }
            do {
                try await proxy.apply(desired)
                applied = desired
                refused = [:]
                continue
            } catch {
                logger.debug("full proxy configuration refused; applying listeners one by one", metadata: ["error": "\(error)"])
            }
            var accepted = ProxyConfiguration(listeners: [])
            var nowRefused: [String: String] = [:]
            for listener in desired.listeners {
                let attempt = ProxyConfiguration(listeners: accepted.listeners + [listener])
                do {
                    try await proxy.apply(attempt)
                    accepted = attempt
                } catch {
                    nowRefused[listener.name] = "\(error)"
                    if refused[listener.name] != "\(error)" {
                        logger.error("cannot serve a service port; retrying", metadata: ["listener": "\(listener.name)", "error": "\(error)"])
                    }
                }
            }
            try? await proxy.apply(accepted)
            applied = accepted
            refused = nowRefused
            Task { [dirty] in
                try? await Task.sleep(for: .seconds(10))
                dirty.yield()
            }
        }
    }

    private func updateZone() {
        guard let dns else { return }
        zoneSerial &+= 1
        do {
            let zone = try ClusterZone(clusterDomain: dns.clusterDomain, ttl: dns.ttl, serial: zoneSerial,
                                       services: Array(services.values), endpoints: endpoints)
            for server in dns.servers { server.update(zone: zone) }
        } catch {
            logger.error("cannot build the DNS zone", metadata: ["error": "\(error)"])
        }
    }

    /// The tunnel of every node that runs one, by node name: its inbound address and node SPIFFE ID.
    static func tunnels(nodes: [String: Node], trustDomain: String?) -> [String: TunnelConfiguration] {
        guard let trustDomain else { return [:] }
        var result: [String: TunnelConfiguration] = [:]
        for (name, node) in nodes {
            guard let address = node.status?.tunnel, let identity = try? SPIFFEID.node(name, trustDomain: trustDomain) else { continue }
            result[name] = TunnelConfiguration(address: address, identity: identity.description)
        }
        return result
    }

    /// This node's replica endpoints (`ip:port`) and the services (`namespace/name`) each belongs to.
    static func localEndpoints(services: [Service], endpoints: [String: Endpoints], node: String) -> [String: [ServiceKey]] {
        var result: [String: [ServiceKey]] = [:]
        for service in services {
            for endpoint in endpoints["\(service.namespace)/\(service.name)"]?.endpoints ?? [] where endpoint.node == node {
                for port in endpoint.ports.values {
                    let id = BackendConfiguration(address: endpoint.ip, port: port).id
                    result[id, default: []].append(ServiceKey(namespace: service.namespace, name: service.name))
                }
            }
        }
        return result
    }

    /// The proxy configuration for these services and endpoints (pure): ports with `appProtocol: http` are
    /// balanced per request, with the service's timeouts and retries; a canary's traffic split and each
    /// endpoint's revision go along; endpoints on other nodes that
    /// run a tunnel are reached through it; so are this node's own endpoints of a protected service
    /// (one an authorization policy or strict mode covers), so that every caller is checked.
    static func configuration(services: [Service], endpoints: [String: Endpoints], tunnels: [String: TunnelConfiguration] = [:],
                              node: String = "", isProtected: (ServiceKey) -> Bool = { _ in false }) -> ProxyConfiguration {
        var listeners: [ListenerConfiguration] = []
        for service in services.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
            guard service.spec.serviceType == .vip, let ip = service.spec.clusterIP else { continue }
            let object = endpoints["\(service.namespace)/\(service.name)"]
            let ready = object?.endpoints ?? []
            let protected = isProtected(ServiceKey(namespace: service.namespace, name: service.name))
            for port in service.spec.ports where (port.protocol ?? "TCP") == "TCP" {
                let backends = ready.compactMap { endpoint in
                    endpoint.ports[String(port.port)].map {
                        BackendConfiguration(address: endpoint.ip, port: $0, weight: endpoint.weight,
                                             tunnel: endpoint.node == node && !protected ? nil : tunnels[endpoint.node],
                                             revision: endpoint.revision)
                    }
                }
                listeners.append(ListenerConfiguration(
                    name: "\(service.namespace)/\(service.name):\(port.name ?? String(port.port))", address: ip, port: port.port,
                    loadBalancer: service.spec.loadBalancer, backends: backends,
                    protocol: port.isHTTP ? .http : .tcp, http: port.isHTTP ? service.spec.http : nil,
                    split: object?.split, service: "\(service.namespace)/\(service.name)"))
            }
        }
        return ProxyConfiguration(listeners: listeners)
    }
}
