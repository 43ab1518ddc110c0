import Testing
@testable import WeftCore

@Suite("DNS responder and its answer templates") struct DNSResponderTests {
    func bytes(_ outcome: DNSResponder.Outcome) -> [UInt8]? {
        if case .respond(let bytes) = outcome { return bytes }
        return nil
    }

    func query(_ name: String, _ type: DNSType, id: UInt16, rd: Bool = true, cd: Bool = false, edns: EDNS? = nil) -> [UInt8] {
        var flags = DNSFlags()
        flags.recursionDesired = rd
        flags.checkingDisabled = cd
        return DNSMessage(id: id, flags: flags, questions: [DNSQuestion(name: dnsName(name), type: type)], edns: edns).encoded()
    }

    @Test func aTemplateAnswerIsByteForByteTheDecodedAnswer() throws {
        let zone = try sampleZone()
        var responder = DNSResponder(seed: 1)
        let cases: [(String, DNSType, Bool, Bool, EDNS?)] = [
            ("web.default.svc.weft.internal", .a, true, false, nil),
            ("WEB.default.SVC.weft.internal", .a, false, true, EDNS(udpPayloadSize: 4096)),
            ("Web.Default.svc.weft.internal", .a, true, true, EDNS(udpPayloadSize: 512, options: [EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])])),
            ("_http._tcp.web.default.svc.weft.internal", .srv, true, false, nil),
            ("nope.default.svc.weft.internal", .a, true, false, nil),
            ("web.default.svc.weft.internal", .aaaa, true, false, EDNS()),
        ]
        for round in 0..<2 {  // the first round fills the templates, the second is answered from them
            for (index, (name, type, rd, cd, edns)) in cases.enumerated() {
                let packet = query(name, type, id: UInt16(1000 * round + index), rd: rd, cd: cd, edns: edns)
                var random = SplitMix64(seed: 1)
                guard case .respond(let expected, let limit) = DNSQueryHandler.handle(packet, zone: zone, canForward: false, random: &random) else {
                    Issue.record("no answer for \(name)")
                    continue
                }
                let got = try #require(bytes(responder.handle(packet, zone: zone, canForward: false, overTCP: false)))
                #expect(got == expected.encoded(maximumLength: limit), "\(name) \(type) round \(round)")
                #expect(try DNSMessage(decoding: got).questions[0].name.description.hasPrefix(name), "case not echoed")
            }
        }
    }

    @Test func aNewZoneReplacesTheTemplates() throws {
        var responder = DNSResponder(seed: 1)
        let packet = query("web.default.svc.weft.internal", .a, id: 1)
        let first = try DNSMessage(decoding: try #require(bytes(responder.handle(packet, zone: try sampleZone(), canForward: false, overTCP: false))))
        let empty = try ClusterZone(clusterDomain: dnsName("weft.internal"), serial: 2, services: [], endpoints: [:])
        let second = try DNSMessage(decoding: try #require(bytes(responder.handle(packet, zone: empty, canForward: false, overTCP: false))))
        #expect(first.responseCode == .noError && second.responseCode == .nameError)
    }

    @Test func shuffledAnswersAreNotFrozen() throws {
        let zone = try sampleZone()
        var responder = DNSResponder(seed: 5)
        var orders = Set<[DNSRecordData]>()
        for id in 0..<40 {
            let response = try DNSMessage(decoding: try #require(bytes(responder.handle(
                query("db.default.svc.weft.internal", .a, id: UInt16(id)), zone: zone, canForward: false, overTCP: false))))
            orders.insert(response.answers.map(\.data))
        }
        #expect(orders.count > 1)
    }

    @Test func aTemplateTooLongForTheClientFallsBackToTruncation() throws {
        // 60 headless replicas: the SRV answer is over 512 bytes.
        let services = [Service(metadata: ObjectMeta(name: "big", namespace: "default"),
                                spec: ServiceSpec(selector: ["app": "big"], ports: [ServicePort(name: "http", port: 80)], type: "Headless"))]
        let endpoints = Endpoints(metadata: ObjectMeta(name: "big", namespace: "default"), endpoints: (0..<60).map {
            Endpoint(replica: "big-\($0)", node: "n1", ip: "10.1.0.\($0 + 1)", ports: ["80": 8080])
        })
        let zone = try ClusterZone(clusterDomain: dnsName("weft.internal"), serial: 1, services: services, endpoints: ["default/big": endpoints])
        var responder = DNSResponder(seed: 1)
        let overTCP = try DNSMessage(decoding: try #require(bytes(responder.handle(
            query("_http._tcp.big.default.svc.weft.internal", .srv, id: 1), zone: zone, canForward: false, overTCP: true))))
        #expect(overTCP.answers.count == 60 && !overTCP.flags.isTruncated)
        let udp = try #require(bytes(responder.handle(query("_http._tcp.big.default.svc.weft.internal", .srv, id: 2), zone: zone, canForward: false, overTCP: false)))
        #expect(udp.count <= 512)
        #expect(try DNSMessage(decoding: udp).flags.isTruncated)
    }

    @Test func namesOutsideTheZoneAreForwardedWithTheClientsLimit() {
        var responder = DNSResponder(seed: 1)
        guard case .forward(let query, let limit) = responder.handle(query("example.com", .a, id: 9, edns: EDNS(udpPayloadSize: 1000)),
                                                                     zone: try! sampleZone(), canForward: true, overTCP: false) else {
            Issue.record("not forwarded")
            return
        }
        #expect(query.id == 9 && limit == 1000)
    }
}
