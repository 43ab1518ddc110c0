/// The cluster's authoritative DNS data, built from services and their endpoints (pure; rebuilt on every
/// change and swapped in whole).
///
/// Names, following the Kubernetes DNS specification with `<zone>` = `svc.<cluster-domain>`:
/// - `<svc>.<ns>.<zone>`: A/AAAA → the VIP; for a headless service one A per distinct ready endpoint
///   address, shuffled per answer, and no name at all (NXDOMAIN) while none is ready.
/// - `_<port>._<proto>.<svc>.<ns>.<zone>`: SRV per named port → the service name and port; for a headless
///   service one per ready endpoint → `<replica>.<svc>.<ns>.<zone>` and the endpoint's port. The targets'
///   addresses go in the additional section.
/// - `<replica>.<svc>.<ns>.<zone>`: A → the endpoint address of a ready replica.
/// - `<d>.<c>.<b>.<a>.in-addr.arpa`: PTR → the service for a VIP, the replica names for an endpoint address.
/// - The apex `<zone>` has SOA and NS; `<ns>.<zone>` and `_<proto>.<svc>.<ns>.<zone>` exist without records.
public struct ClusterZone: Sendable {
    /// `svc.<cluster-domain>`.
    public let apex: DNSName
    public let ttl: UInt32
    /// Different for every zone built: what answer caches key their validity on.
    public let identity = UInt64.random(in: 0...UInt64.max)
    private let soa: DNSRecordData
    private var nodes: [DNSName: Node] = [:]
    private var reverse: [DNSName: Node] = [:]

    struct Node: Sendable {
        var records: [DNSRecordData] = []
        /// Address records in the additional section of an answer (SRV targets).
        var additionals: [DNSRecord] = []
        /// Shuffle the records of each answer (a headless service's addresses).
        var shuffles = false
    }

    /// - Parameters:
    ///   - clusterDomain: e.g. `weft.internal`; the zone is `svc.` in front of it.
    ///   - serial: the SOA serial; bump it whenever the data changes.
    ///   - endpoints: keyed `"<namespace>/<name>"`, as the endpoints objects are named after their services.
    public init(clusterDomain: DNSName, ttl: UInt32 = 5, serial: UInt32, services: [Service], endpoints: [String: Endpoints]) throws(DNSNameError) {
        apex = try clusterDomain.prepending(Array("svc".utf8))
        self.ttl = ttl
        soa = .soa(DNSSOA(
            primaryServer: try clusterDomain.prepending(Array("dns".utf8)).prepending(Array("ns".utf8)),
            responsibleMailbox: try clusterDomain.prepending(Array("hostmaster".utf8)),
            serial: serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl))
        nodes[apex] = Node(records: [soa, .ns(try clusterDomain.prepending(Array("dns".utf8)).prepending(Array("ns".utf8)))])
        for service in services {
            // Names that are not DNS labels cannot be served; validation keeps them out of the store anyway.
            try? add(service, endpoints: endpoints["\(service.namespace)/\(service.name)"]?.endpoints ?? [])
        }
    }

    private func name(_ labels: String...) throws(DNSNameError) -> DNSName {
        var name = apex
        for label in labels.reversed() { name = try name.prepending(Array(label.utf8)) }
        return name
    }

    private mutating func add(_ service: Service, endpoints: [Endpoint]) throws(DNSNameError) {
        let namespaceName = try name(service.namespace)
        let serviceName = try name(service.name, service.namespace)
        nodes[namespaceName, default: Node()] = nodes[namespaceName] ?? Node()

        var replicas: [(name: DNSName, endpoint: Endpoint, address: IPv4Address)] = []
        for endpoint in endpoints {
            guard let address = IPv4Address(endpoint.ip) else { continue }
            let replicaName = try name(endpoint.replica, service.name, service.namespace)
            replicas.append((replicaName, endpoint, address))
            nodes[replicaName, default: Node()].records.append(.a(address))
            addPointer(from: address, to: replicaName)
        }

        let headless = service.spec.serviceType == .headless
        var serviceNode = Node()
        if headless {
            guard !replicas.isEmpty else { return }  // no ready endpoint: the name does not exist (NXDOMAIN)
            var seen = Set<IPv4Address>()
            serviceNode.records = replicas.compactMap { seen.insert($0.address).inserted ? .a($0.address) : nil }
            serviceNode.shuffles = true
        } else if let text = service.spec.clusterIP, let address = IPv4Address(text) {
            serviceNode.records = [.a(address)]
            addPointer(from: address, to: serviceName)
        }
        nodes[serviceName] = serviceNode

        for port in service.spec.ports {
            guard let portName = port.name else { continue }  // unnamed ports have no SRV record
            let proto = "_" + (port.protocol ?? "TCP").lowercased()
            let protoName = try name(proto, service.name, service.namespace)
            let srvName = try name("_" + portName, proto, service.name, service.namespace)
            nodes[protoName] = nodes[protoName] ?? Node()
            var node = Node()
            if headless {
                for replica in replicas {
                    guard let number = replica.endpoint.ports[String(port.port)], let port = UInt16(exactly: number) else { continue }
                    node.records.append(.srv(priority: 0, weight: 100, port: port, target: replica.name))
                    node.additionals.append(DNSRecord(name: replica.name, ttl: ttl, data: .a(replica.address)))
                }
            } else if let port = UInt16(exactly: port.port) {
                node.records = [.srv(priority: 0, weight: 100, port: port, target: serviceName)]
                node.additionals = serviceNode.records.map { DNSRecord(name: serviceName, ttl: ttl, data: $0) }
            }
            nodes[srvName] = node
        }
    }

    private mutating func addPointer(from address: IPv4Address, to target: DNSName) {
        let record = DNSRecordData.ptr(target)
        if reverse[address.reverseName]?.records.contains(record) != true {
            reverse[address.reverseName, default: Node()].records.append(record)
        }
    }

    /// Whether this zone answers for `name`: a name in the zone, or the reverse name of one of its addresses.
    public func isAuthoritative(for name: DNSName) -> Bool {
        name.isSubdomain(of: apex) || reverse[name] != nil
    }

    /// The answer to a one-question query for a name this zone is authoritative for (see
    /// `isAuthoritative`): records, NODATA or NXDOMAIN, negative answers with the SOA (RFC 2308).
    /// Owner names echo the question's case; EDNS is left to the caller.
    public func answer<Random: RandomNumberGenerator>(_ question: DNSQuestion, random: inout Random) -> ZoneAnswer {
        guard question.class == .internet || question.class == .any else {
            return ZoneAnswer(responseCode: .refused)
        }
        let node = question.name.isSubdomain(of: apex) ? nodes[question.name] : reverse[question.name]
        guard let node else {
            return ZoneAnswer(responseCode: .nameError, authorities: [negativeSOA])
        }
        var records = node.records.filter { question.type == .any || $0.type == question.type }
        guard !records.isEmpty else {
            return ZoneAnswer(responseCode: .noError, authorities: [negativeSOA])
        }
        if node.shuffles { records.shuffle(using: &random) }
        let answers = records.map { DNSRecord(name: question.name, ttl: ttl, data: $0) }
        let additionals = question.type == .srv || question.type == .any ? node.additionals : []
        return ZoneAnswer(responseCode: .noError, answers: answers, additionals: additionals)
    }

    /// Whether answers for `name` come in a new order each time (a headless service's addresses).
    public func shuffles(_ name: DNSName) -> Bool {
        nodes[name]?.shuffles ?? false
    }

    private var negativeSOA: DNSRecord { DNSRecord(name: apex, ttl: ttl, data: soa) }

    /// How many names the zone holds (forward and reverse), for logs and memory figures.
    public var nameCount: Int { nodes.count + reverse.count }
}

/// What the zone says to one question.
public struct ZoneAnswer: Sendable, Hashable {
    public var responseCode: DNSResponseCode
    public var answers: [DNSRecord] = []
    public var authorities: [DNSRecord] = []
    public var additionals: [DNSRecord] = []
}
