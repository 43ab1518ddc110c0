import Testing
@testable import WeftCore

@Suite("DNS query handling") struct DNSQueryHandlerTests {
    var random = SplitMix64(seed: 3)

    func query(_ name: String, _ type: DNSType, id: UInt16 = 0x4242, edns: EDNS? = nil) -> DNSMessage {
        var flags = DNSFlags()
        flags.recursionDesired = true
        return DNSMessage(id: id, flags: flags, questions: [DNSQuestion(name: dnsName(name), type: type)], edns: edns)
    }

    mutating func respond(_ packet: [UInt8], canForward: Bool = false) throws -> DNSMessage? {
        switch DNSQueryHandler.handle(packet, zone: try sampleZone(), canForward: canForward, random: &random) {
        case .respond(let response, _): return response
        case .forward(let query): Issue.record("forwarded \(query)"); return nil
        case .drop: return nil
        }
    }

    @Test mutating func zoneAnswersAreAuthoritativeAndEchoTheQuery() throws {
        let responded = try respond(query("Web.default.svc.weft.internal", .a, edns: EDNS(udpPayloadSize: 4096)).encoded())
        let response = try #require(responded)
        #expect(response.id == 0x4242 && response.flags.isResponse && response.flags.isAuthoritative)
        #expect(response.flags.recursionDesired && !response.flags.recursionAvailable)
        #expect(response.questions == [DNSQuestion(name: dnsName("Web.default.svc.weft.internal"), type: .a)])
        #expect(response.questions[0].name.description.hasPrefix("Web."))
        #expect(response.answers.count == 1)
        #expect(response.edns?.udpPayloadSize == 1232)
    }

    @Test mutating func namesOutsideTheZoneAreRefusedWithoutUpstreamsAndForwardedWithThem() throws {
        let outside = query("example.com", .a).encoded()
        #expect(try respond(outside)?.responseCode == .refused)
        guard case .forward(let forwarded) = DNSQueryHandler.handle(outside, zone: try sampleZone(), canForward: true, random: &random) else {
            Issue.record("not forwarded")
            return
        }
        #expect(forwarded.questions.first?.name == dnsName("example.com"))
    }

    @Test mutating func badInputGetsFormErrNotImpOrNothing() throws {
        // Shorter than a header, or a response: dropped.
        #expect(try respond([1, 2, 3]) == nil)
        var answer = query("web.default.svc.weft.internal", .a)
        answer.flags.isResponse = true
        #expect(try respond(answer.encoded()) == nil)
        // A readable header with garbage after it: FORMERR with the same id.
        let garbage = hexBytes("abcd 0100 0001 0000 0000 0000 07 6578")
        let formErrResponse = try respond(garbage)
        let formErr = try #require(formErrResponse)
        #expect(formErr.id == 0xabcd && formErr.responseCode == .formatError && formErr.questions.isEmpty)
        // Two questions: FORMERR.
        var two = query("web.default.svc.weft.internal", .a)
        two.questions.append(two.questions[0])
        #expect(try respond(two.encoded())?.responseCode == .formatError)
        // An UPDATE: NOTIMP.
        var update = query("web.default.svc.weft.internal", .a)
        update.flags.opcode = .update
        #expect(try respond(update.encoded())?.responseCode == .notImplemented)
        // EDNS version 1: BADVERS in the OPT record.
        let badVersionResponse = try respond(query("web.default.svc.weft.internal", .a, edns: EDNS(version: 1)).encoded())
        let badVersion = try #require(badVersionResponse)
        #expect(badVersion.responseCode == .badVersion)
        #expect(try DNSMessage(decoding: badVersion.encoded()).responseCode == .badVersion)
        // A zone transfer: REFUSED.
        #expect(try respond(query("svc.weft.internal", .axfr).encoded())?.responseCode == .refused)
    }

    @Test func udpLimitsFollowEDNS() {
        #expect(DNSQueryHandler.responseLimit(for: query("a", .a), overTCP: false) == 512)
        #expect(DNSQueryHandler.responseLimit(for: query("a", .a, edns: EDNS(udpPayloadSize: 100)), overTCP: false) == 512)
        #expect(DNSQueryHandler.responseLimit(for: query("a", .a, edns: EDNS(udpPayloadSize: 1000)), overTCP: false) == 1000)
        #expect(DNSQueryHandler.responseLimit(for: query("a", .a, edns: EDNS(udpPayloadSize: 65000)), overTCP: false) == 1232)
        #expect(DNSQueryHandler.responseLimit(for: query("a", .a), overTCP: true) == 65535)
    }

    @Test func relayedAnswersKeepTheClientsIdAndQuestion() {
        let client = query("Example.COM", .a, id: 77, edns: EDNS(udpPayloadSize: 512))
        var upstream = DNSMessage(id: 9999, questions: [DNSQuestion(name: dnsName("example.com"), type: .a)])
        upstream.flags.isResponse = true
        upstream.answers = [DNSRecord(name: dnsName("example.com"), ttl: 60, data: .a(IPv4Address(127, 0, 0, 9)))]
        let relayed = DNSQueryHandler.relay(upstream, to: client)
        #expect(relayed.id == 77 && relayed.questions == client.questions && relayed.answers == upstream.answers)
        #expect(relayed.flags.recursionAvailable && !relayed.flags.isAuthoritative)
        #expect(DNSQueryHandler.relay(nil, to: client).responseCode == .serverFailure)
    }
}
