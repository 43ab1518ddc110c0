import Testing
@testable import WeftCore

/// Bytes from hex text; spaces and newlines are ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter(\.isHexDigit)
    return stride(from: 0, to: digits.count, by: 2).map {
        let start = digits.index(digits.startIndex, offsetBy: $0)
        return UInt8(digits[start..<digits.index(start, offsetBy: 2)], radix: 16)!
    }
}

func dnsName(_ text: String) -> DNSName { try! DNSName(text) }

@Suite("DNS wire codec") struct DNSCodecTests {
    /// `dig example.com A` as sent by dig 9.18 with `+noedns +noadflag`: id 0x1234, RD.
    let exampleQuery = hexBytes("1234 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001")

    @Test func decodesAGoldenQuery() throws {
        let message = try DNSMessage(decoding: exampleQuery)
        #expect(message.id == 0x1234)
        #expect(message.flags.recursionDesired && !message.flags.isResponse)
        #expect(message.flags.opcode == .query)
        #expect(message.questions == [DNSQuestion(name: dnsName("example.com"), type: .a)])
        #expect(message.edns == nil)
        #expect(message.encoded() == exampleQuery)
    }

    @Test func decodesAGoldenResponseWithCompressionAndEDNS() throws {
        // Response: question example.com A; answer "C00C" → example.com A 93.184.216.34 TTL 300;
        // OPT with payload 1232, DO bit, one cookie option.
        let bytes = hexBytes("""
            1234 8180 0001 0001 0000 0001
            07 6578616d706c65 03 636f6d 00 0001 0001
            c00c 0001 0001 0000012c 0004 5db8d822
            00 0029 04d0 00 00 8000 000c 000a 0008 0102030405060708
            """)
        let message = try DNSMessage(decoding: bytes)
        #expect(message.flags.isResponse && message.flags.recursionAvailable)
        #expect(message.answers == [DNSRecord(name: dnsName("example.com"), ttl: 300, data: .a(IPv4Address(93, 184, 216, 34)))])
        let edns = try #require(message.edns)
        #expect(edns.udpPayloadSize == 1232 && edns.dnssecOK && edns.version == 0)
        #expect(edns.options == [EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])])
        #expect(message.additionals.isEmpty)
        // Re-encoding compresses the answer's owner into the same pointer: byte for byte the same.
        #expect(message.encoded() == bytes)
    }

    @Test func compressionPointsAtEarlierSuffixes() throws {
        let zone = dnsName("default.svc.weft.internal")
        var message = DNSMessage(id: 7, questions: [DNSQuestion(name: dnsName("web.default.svc.weft.internal"), type: .srv)])
        message.answers = [DNSRecord(name: dnsName("web.default.svc.weft.internal"), ttl: 5,
                                     data: .srv(priority: 0, weight: 100, port: 80, target: try zone.prepending(Array("web".utf8))))]
        message.additionals = [DNSRecord(name: dnsName("web.default.svc.weft.internal"), ttl: 5, data: .a(IPv4Address(127, 10, 0, 1)))]
        let bytes = message.encoded()
        // The question name is written once; the answer and additional owners are 2-byte pointers.
        let uncompressed = 12 + 31 + 4 + 3 * (31 + 10) + (6 + 31) + 4
        #expect(bytes.count < uncompressed - 60)
        #expect(try DNSMessage(decoding: bytes) == message)
    }

    @Test func namesCompareWithoutCaseAndKeepTheirCase() throws {
        let mixed = dnsName("Web.DEFAULT.svc.Weft.Internal.")
        #expect(mixed == dnsName("web.default.svc.weft.internal"))
        #expect(mixed.hashValue == dnsName("web.default.svc.weft.internal").hashValue)
        #expect(mixed.description == "Web.DEFAULT.svc.Weft.Internal.")
        #expect(mixed.isSubdomain(of: dnsName("SVC.weft.internal")))
        #expect(!dnsName("weft.internal").isSubdomain(of: dnsName("svc.weft.internal")))
        #expect(DNSName.root.description == ".")
        #expect(try DNSName("a\\.b.c").labels == [Array("a.b".utf8), Array("c".utf8)])
        #expect(throws: DNSNameError.emptyLabel("a..b")) { try DNSName("a..b") }
        #expect(throws: DNSNameError.labelTooLong(String(repeating: "x", count: 64))) { try DNSName(String(repeating: "x", count: 64)) }
        let long = Array(repeating: String(repeating: "x", count: 63), count: 4).joined(separator: ".")
        #expect(throws: DNSNameError.nameTooLong(long)) { try DNSName(long) }
    }

    @Test(arguments: [
        ("", "12-byte header"),
        ("1234 0100 0001 0000 0000 0000", "runs past the end"),                     // question missing
        ("1234 0100 0001 0000 0000 0000 07 6578616d", "runs past"),                 // label cut off
        ("1234 0100 0001 0000 0000 0000 c00c 0001 0001", "does not point backwards"), // pointer to itself
        ("1234 0100 0001 0000 0000 0000 01 61 c00c 0001 0001", "does not point backwards"), // forward pointer
        ("1234 0100 0001 0000 0000 0000 81 61 00 0001 0001", "label type 0x80"),
        ("1234 0100 0001 0000 0000 0000 00 0001 0001 ff", "1 bytes after"),
        ("1234 8100 0000 0001 0000 0000 00 0001 0001 00000005 0003 7f0000", "A record needs 4 bytes"),
        ("1234 8100 0000 0001 0000 0000 00 0029 0200 00000000 0000", "OPT record outside"),
        ("1234 0100 0000 0000 0000 0002 00 0029 0200 00000000 0000 00 0029 0200 00000000 0000", "second OPT"),
        ("1234 8100 0000 0001 0000 0000 00 0010 0001 00000005 0000", "TXT record needs at least one string"),
    ])
    func refusesMalformedInputWithAReason(hex: String, reason: String) {
        do {
            let message = try DNSMessage(decoding: hexBytes(hex))
            Issue.record("decoded \(message)")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test func aPointerChainLongerThan255BytesIsRefused() {
        // Answer 1 carries opaque data that happens to be a chain of 130 one-byte labels, each pointing
        // back at the one before; answer 2's owner points at the chain's end: a 261-byte name.
        let rdataStart = 12 + 11
        var chain: [UInt8] = [0]
        var previous = rdataStart
        for _ in 0..<130 {
            let here = rdataStart + chain.count
            chain += [1, UInt8(ascii: "a"), 0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF)]
            previous = here
        }
        var bytes = hexBytes("1234 8100 0000 0002 0000 0000")
        bytes += [0, 0xFF, 0x00, 0, 1, 0, 0, 0, 5, UInt8(chain.count >> 8), UInt8(chain.count & 0xFF)] + chain
        bytes += [0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]
        do {
            _ = try DNSMessage(decoding: bytes)
            Issue.record("decoded a name longer than 255 bytes")
        } catch {
            #expect(error.description.contains("longer than 255"), "\(error)")
        }
    }

    @Test func everyRecordTypeRoundTrips() throws {
        var message = DNSMessage(id: 0xBEEF, questions: [DNSQuestion(name: dnsName("x.weft.internal"), type: .any)])
        message.flags.isResponse = true
        message.flags.isAuthoritative = true
        message.flags.opcode = .query
        message.answers = [
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .a(IPv4Address(127, 10, 0, 7))),
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .aaaa(IPv6Address(bytes: [0xfd] + Array(repeating: 0, count: 14) + [1])!)),
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .ns(dnsName("ns.dns.weft.internal"))),
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .cname(dnsName("y.weft.internal"))),
            DNSRecord(name: dnsName("7.0.10.127.in-addr.arpa"), ttl: 5, data: .ptr(dnsName("x.weft.internal"))),
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .mx(preference: 10, exchange: dnsName("mail.weft.internal"))),
            DNSRecord(name: dnsName("x.weft.internal"), ttl: 5, data: .txt([Array("v=1".utf8), []])),
            DNSRecord(name: dnsName("_http._tcp.x.weft.internal"), ttl: 5, data: .srv(priority: 1, weight: 2, port: 8080, target: dnsName("x.weft.internal"))),
            DNSRecord(name: dnsName("x.weft.internal"), class: DNSClass(rawValue: 3), ttl: 0, data: .other(type: DNSType(rawValue: 99), bytes: [1, 2, 3])),
        ]
        message.authorities = [DNSRecord(name: dnsName("weft.internal"), ttl: 5, data: .soa(DNSSOA(
            primaryServer: dnsName("ns.dns.weft.internal"), responsibleMailbox: dnsName("hostmaster.weft.internal"),
            serial: 42, refresh: 7200, retry: 1800, expire: 86400, minimum: 5)))]
        message.edns = EDNS(udpPayloadSize: 4096, extendedResponseCode: 1, version: 0, dnssecOK: true, options: [EDNSOption(code: 8, data: [0, 1, 24, 0, 127, 0, 0])])
        let decoded = try DNSMessage(decoding: message.encoded())
        #expect(decoded == message)
        #expect(decoded.responseCode == DNSResponseCode(rawValue: 16))
        #expect(IPv6Address(bytes: [0xfd] + Array(repeating: 0, count: 14) + [1])!.description == "fd00::1")
    }

    @Test func randomMessagesRoundTrip() throws {
        var random = SplitMix64(seed: 2026)
        for _ in 0..<500 {
            let message = randomMessage(&random)
            let decoded = try DNSMessage(decoding: message.encoded())
            #expect(decoded == message)
        }
    }

    @Test func truncationKeepsWholeRecordsTheOPTAndSetsTC() throws {
        var random = SplitMix64(seed: 7)
        for _ in 0..<300 {
            var message = randomMessage(&random)
            message.edns = Bool.random(using: &random) ? EDNS(udpPayloadSize: 1232) : nil
            let full = message.encoded()
            let limit = Int.random(in: 12...max(13, full.count), using: &random)
            let bytes = message.encoded(maximumLength: limit)
            let decoded = try DNSMessage(decoding: bytes)
            let headerAndQuestion = 12 + message.questions.reduce(0) { $0 + $1.name.wireLength + 4 } + (message.edns == nil ? 0 : 11)
            #expect(bytes.count <= max(limit, headerAndQuestion))
            #expect(decoded.edns == message.edns)
            #expect(decoded.answers == Array(message.answers.prefix(decoded.answers.count)))
            let lostRecords = decoded.answers.count < message.answers.count || decoded.authorities.count < message.authorities.count
            #expect(decoded.flags.isTruncated == (lostRecords || message.flags.isTruncated))
            if bytes.count == full.count { #expect(decoded == message) }
        }
    }
}

/// A random message with names that share suffixes (so compression is exercised).
func randomMessage(_ random: inout SplitMix64) -> DNSMessage {
    let words = ["web", "cart", "Catalog", "default", "svc", "weft", "internal", "_http", "_tcp", "a-b", "x"]
    func name() -> DNSName {
        let count = Int.random(in: 0...5, using: &random)
        return try! DNSName(labels: (0..<count).map { _ in Array(words.randomElement(using: &random)!.utf8) })
    }
    var message = DNSMessage(id: UInt16.random(in: 0...UInt16.max, using: &random),
                             flags: DNSFlags(rawValue: UInt16.random(in: 0...UInt16.max, using: &random) & ~0x0200 & ~0x0070))
    message.questions = (0..<Int.random(in: 0...2, using: &random)).map { _ in
        DNSQuestion(name: name(), type: [.a, .aaaa, .srv, .ptr, .txt].randomElement(using: &random)!)
    }
    func record() -> DNSRecord {
        let data: DNSRecordData
        switch Int.random(in: 0..<7, using: &random) {
        case 0: data = .a(IPv4Address(value: UInt32.random(in: 0...UInt32.max, using: &random)))
        case 1: data = .srv(priority: 0, weight: 100, port: UInt16.random(in: 1...65535, using: &random), target: name())
        case 2: data = .ptr(name())
        case 3: data = .cname(name())
        case 4: data = .txt([Array(words.randomElement(using: &random)!.utf8)])
        case 5: data = .soa(DNSSOA(primaryServer: name(), responsibleMailbox: name(), serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5))
        default: data = .other(type: DNSType(rawValue: 65280), bytes: (0..<Int.random(in: 0...20, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        return DNSRecord(name: name(), ttl: UInt32.random(in: 0...86400, using: &random), data: data)
    }
    message.answers = (0..<Int.random(in: 0...12, using: &random)).map { _ in record() }
    message.authorities = (0..<Int.random(in: 0...2, using: &random)).map { _ in record() }
    message.additionals = (0..<Int.random(in: 0...4, using: &random)).map { _ in record() }
    return message
}
