import Testing
@testable import WeftCore

func zoneService(_ name: String, namespace: String = "default", headless: Bool = false, clusterIP: String? = nil, ports: [ServicePort]) -> Service {
    Service(metadata: ObjectMeta(name: name, namespace: namespace),
            spec: ServiceSpec(selector: ["app": name], ports: ports, type: headless ? "Headless" : nil, clusterIP: clusterIP))
}

func zoneEndpoints(_ service: String, namespace: String = "default", _ endpoints: [(replica: String, ip: String, port: Int)], servicePort: Int = 80) -> Endpoints {
    Endpoints(metadata: ObjectMeta(name: service, namespace: namespace),
              endpoints: endpoints.map { Endpoint(replica: $0.replica, node: "n1", ip: $0.ip, ports: [String(servicePort): $0.port]) })
}

/// A small cluster: a VIP service `web`, a headless `db` with three ready replicas, a headless `idle`
/// with none, in the `default` namespace.
func sampleZone(ttl: UInt32 = 5) throws -> ClusterZone {
    let services = [
        zoneService("web", clusterIP: "127.10.0.5", ports: [ServicePort(name: "http", port: 80), ServicePort(port: 81)]),
        zoneService("db", headless: true, ports: [ServicePort(name: "pg", port: 80)]),
        zoneService("idle", headless: true, ports: [ServicePort(name: "x", port: 80)]),
    ]
    let endpoints = [
        "default/web": zoneEndpoints("web", [("web-a", "127.0.0.1", 30001)]),
        "default/db": zoneEndpoints("db", [("db-0", "10.0.0.1", 5432), ("db-1", "10.0.0.2", 5432), ("db-2", "10.0.0.3", 5433)]),
        "default/idle": zoneEndpoints("idle", []),
    ]
    return try ClusterZone(clusterDomain: dnsName("weft.internal"), ttl: ttl, serial: 9, services: services, endpoints: endpoints)
}

@Suite("Cluster DNS zone") struct ClusterZoneTests {
    var random = SplitMix64(seed: 1)

    mutating func ask(_ zone: ClusterZone, _ name: String, _ type: DNSType) -> ZoneAnswer {
        zone.answer(DNSQuestion(name: dnsName(name), type: type), random: &random)
    }

    @Test mutating func aVIPServiceAnswersItsAddressInTheQuestionsCase() throws {
        let zone = try sampleZone()
        let answer = ask(zone, "WEB.Default.svc.weft.internal", .a)
        #expect(answer.responseCode == .noError)
        #expect(answer.answers == [DNSRecord(name: dnsName("WEB.Default.svc.weft.internal"), ttl: 5, data: .a(IPv4Address(127, 10, 0, 5)))])
        #expect(answer.answers[0].name.description == "WEB.Default.svc.weft.internal.")
        #expect(answer.authorities.isEmpty)
    }

    @Test mutating func noDataAndNameErrorCarryTheSOA() throws {
        let zone = try sampleZone(ttl: 7)
        let nodata = ask(zone, "web.default.svc.weft.internal", .aaaa)
        #expect(nodata.responseCode == .noError && nodata.answers.isEmpty)
        let missing = ask(zone, "nope.default.svc.weft.internal", .a)
        #expect(missing.responseCode == .nameError && missing.answers.isEmpty)
        for answer in [nodata, missing] {
            let soa = try #require(answer.authorities.first)
            #expect(soa.name == dnsName("svc.weft.internal") && soa.ttl == 7)
            guard case .soa(let data) = soa.data else { Issue.record("not an SOA: \(soa)"); continue }
            #expect(data.minimum == 7 && data.serial == 9)
        }
        // Names that exist without records: the namespace and the protocol label.
        #expect(ask(zone, "default.svc.weft.internal", .a).responseCode == .noError)
        #expect(ask(zone, "_tcp.web.default.svc.weft.internal", .srv).responseCode == .noError)
        #expect(ask(zone, "other.svc.weft.internal", .a).responseCode == .nameError)
    }

    @Test mutating func theApexHasSOAAndNS() throws {
        let zone = try sampleZone()
        #expect(ask(zone, "svc.weft.internal", .soa).answers.map(\.type) == [.soa])
        #expect(ask(zone, "svc.weft.internal", .ns).answers.map(\.data) == [.ns(dnsName("ns.dns.weft.internal"))])
        #expect(zone.isAuthoritative(for: dnsName("anything.svc.weft.internal")))
        #expect(!zone.isAuthoritative(for: dnsName("weft.internal")))
        #expect(!zone.isAuthoritative(for: dnsName("example.com")))
    }

    @Test mutating func srvForANamedVIPPortPointsAtTheServiceWithItsAddressAdditional() throws {
        let zone = try sampleZone()
        let answer = ask(zone, "_http._tcp.web.default.svc.weft.internal", .srv)
        #expect(answer.answers.map(\.data) == [.srv(priority: 0, weight: 100, port: 80, target: dnsName("web.default.svc.weft.internal"))])
        #expect(answer.additionals == [DNSRecord(name: dnsName("web.default.svc.weft.internal"), ttl: 5, data: .a(IPv4Address(127, 10, 0, 5)))])
        // The unnamed port 81 has no SRV record; the UDP protocol label does not exist.
        #expect(ask(zone, "_81._tcp.web.default.svc.weft.internal", .srv).responseCode == .nameError)
        #expect(ask(zone, "_http._udp.web.default.svc.weft.internal", .srv).responseCode == .nameError)
    }

    @Test mutating func headlessServicesAnswerEveryReadyEndpointShuffled() throws {
        let zone = try sampleZone()
        var orders = Set<[DNSRecordData]>()
        for _ in 0..<50 {
            let answer = ask(zone, "db.default.svc.weft.internal", .a)
            #expect(Set(answer.answers.map(\.data)) == [.a(IPv4Address(10, 0, 0, 1)), .a(IPv4Address(10, 0, 0, 2)), .a(IPv4Address(10, 0, 0, 3))])
            orders.insert(answer.answers.map(\.data))
        }
        #expect(orders.count > 1, "the order never changed")
        let srv = ask(zone, "_pg._tcp.db.default.svc.weft.internal", .srv)
        #expect(Set(srv.answers.map(\.data)) == [
            .srv(priority: 0, weight: 100, port: 5432, target: dnsName("db-0.db.default.svc.weft.internal")),
            .srv(priority: 0, weight: 100, port: 5432, target: dnsName("db-1.db.default.svc.weft.internal")),
            .srv(priority: 0, weight: 100, port: 5433, target: dnsName("db-2.db.default.svc.weft.internal")),
        ])
        #expect(srv.additionals.count == 3)
        #expect(ask(zone, "db-1.db.default.svc.weft.internal", .a).answers.map(\.data) == [.a(IPv4Address(10, 0, 0, 2))])
    }

    @Test mutating func aHeadlessServiceWithNoReadyEndpointDoesNotExist() throws {
        let zone = try sampleZone()
        #expect(ask(zone, "idle.default.svc.weft.internal", .a).responseCode == .nameError)
        #expect(ask(zone, "_x._tcp.idle.default.svc.weft.internal", .srv).responseCode == .nameError)
    }

    @Test mutating func pointersNameTheServiceForAVIPAndTheReplicaForAnEndpoint() throws {
        let zone = try sampleZone()
        #expect(ask(zone, "5.0.10.127.in-addr.arpa", .ptr).answers.map(\.data) == [.ptr(dnsName("web.default.svc.weft.internal"))])
        #expect(ask(zone, "2.0.0.10.in-addr.arpa", .ptr).answers.map(\.data) == [.ptr(dnsName("db-1.db.default.svc.weft.internal"))])
        #expect(zone.isAuthoritative(for: dnsName("3.0.0.10.in-addr.arpa")))
        #expect(!zone.isAuthoritative(for: dnsName("9.0.0.10.in-addr.arpa")))
    }

    @Test mutating func otherClassesAreRefused() throws {
        let zone = try sampleZone()
        let answer = zone.answer(DNSQuestion(name: dnsName("web.default.svc.weft.internal"), type: .a, class: .chaos), random: &random)
        #expect(answer.responseCode == .refused)
    }
}
