/// Why a message could not be decoded; `description` names the place.
public struct DNSWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    /// The byte offset the decoder was at.
    public var offset: Int

    public var description: String { "malformed DNS message at byte \(offset): \(reason)" }
}

/// The fixed 12-byte header: what a server can still read (and answer FORMERR to) when the rest is bad.
public struct DNSHeader: Sendable, Hashable {
    public var id: UInt16
    public var flags: DNSFlags
    public var questionCount: UInt16
    public var answerCount: UInt16
    public var authorityCount: UInt16
    public var additionalCount: UInt16

    public static let length = 12

    /// The header at the start of `bytes`, nil when there are fewer than 12.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length else { return nil }
        func word(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        id = word(0)
        flags = DNSFlags(rawValue: word(2))
        questionCount = word(4)
        answerCount = word(6)
        authorityCount = word(8)
        additionalCount = word(10)
    }

    public init?(_ bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ DNSHeader($0) }) else { return nil }
        self = header
    }
}

extension DNSMessage {
    /// Decodes a whole message. Bounds-checked throughout; compression pointers must point backwards
    /// (which rules out loops) and names stay within 255 bytes, so hostile input costs at most linear time.
    public init(decoding bytes: [UInt8]) throws(DNSWireError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(DNSWireError) -> DNSMessage in try DNSMessage(decoding: buffer) }
        }
        self = try result.get()
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws(DNSWireError) {
        var reader = DNSWireReader(bytes)
        guard let header = DNSHeader(bytes) else {
            throw DNSWireError(reason: "a message needs a 12-byte header, got \(bytes.count) bytes", offset: 0)
        }
        reader.offset = DNSHeader.length
        var message = DNSMessage(id: header.id, flags: header.flags)
        message.questions.reserveCapacity(Int(min(header.questionCount, 4)))
        for _ in 0..<header.questionCount {
            let name = try reader.readName()
            let type = DNSType(rawValue: try reader.readUInt16())
            let `class` = DNSClass(rawValue: try reader.readUInt16())
            message.questions.append(DNSQuestion(name: name, type: type, class: `class`))
        }
        message.answers = try reader.readRecords(count: header.answerCount, allowingOPT: false).records
        message.authorities = try reader.readRecords(count: header.authorityCount, allowingOPT: false).records
        (message.additionals, message.edns) = try reader.readRecords(count: header.additionalCount, allowingOPT: true)
        guard reader.offset == bytes.count else {
            throw DNSWireError(reason: "\(bytes.count - reader.offset) bytes after the last record", offset: reader.offset)
        }
        self = message
    }
}

/// A cursor over one message's bytes.
struct DNSWireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> DNSWireError {
        DNSWireError(reason: reason, offset: offset ?? self.offset)
    }

    mutating func need(_ count: Int, for what: String) throws(DNSWireError) {
        guard bytes.count - offset >= count else {
            throw fail("\(what) needs \(count) bytes, \(bytes.count - offset) left")
        }
    }

    mutating func readUInt8() throws(DNSWireError) -> UInt8 {
        try need(1, for: "a byte")
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(DNSWireError) -> UInt16 {
        try need(2, for: "a 16-bit field")
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func readUInt32() throws(DNSWireError) -> UInt32 {
        try need(4, for: "a 32-bit field")
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func readBytes(_ count: Int, for what: String) throws(DNSWireError) -> [UInt8] {
        try need(count, for: what)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// A possibly compressed name (RFC 1035 §4.1.4). Leaves `offset` after the name's bytes here (after
    /// the first pointer, if any).
    mutating func readName() throws(DNSWireError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1
        var cursor = offset
        var resumeAt: Int?
        // Every pointer must go strictly backwards from where it is: no loops, at most one pass.
        var lowestPointerSource = cursor
        while true {
            guard cursor < bytes.count else { throw fail("a name runs past the end of the message", at: cursor) }
            let length = bytes[cursor]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    offset = resumeAt ?? cursor + 1
                    return DNSName(validatedLabels: labels)
                }
                let count = Int(length)
                guard cursor + 1 + count <= bytes.count else {
                    throw fail("a \(count)-byte label runs past the end of the message", at: cursor)
                }
                wireLength += count + 1
                guard wireLength <= DNSName.maximumWireLength else {
                    throw fail("a name is longer than 255 bytes", at: cursor)
                }
                labels.append(Array(bytes[(cursor + 1)..<(cursor + 1 + count)]))
                cursor += 1 + count
            case 0xC0:
                guard cursor + 1 < bytes.count else { throw fail("a compression pointer is cut off", at: cursor) }
                let target = Int(length & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < lowestPointerSource, target < cursor else {
                    throw fail("a compression pointer to byte \(target) does not point backwards", at: cursor)
                }
                if resumeAt == nil { resumeAt = cursor + 2 }
                lowestPointerSource = target
                cursor = target
            default:
                throw fail("label type 0x\(String(length & 0xC0, radix: 16)) is not supported", at: cursor)
            }
        }
    }

    /// `count` records; an OPT record (allowed once, in the additional section) comes back as `edns`.
    mutating func readRecords(count: UInt16, allowingOPT: Bool) throws(DNSWireError) -> (records: [DNSRecord], edns: EDNS?) {
        var records: [DNSRecord] = []
        var edns: EDNS?
        records.reserveCapacity(Int(min(count, 16)))
        for _ in 0..<count {
            let start = offset
            let name = try readName()
            let type = DNSType(rawValue: try readUInt16())
            let classValue = try readUInt16()
            let ttl = try readUInt32()
            let length = Int(try readUInt16())
            try need(length, for: "\(type) record data")
            let end = offset + length
            if type == .opt {
                guard allowingOPT else { throw fail("an OPT record outside the additional section", at: start) }
                guard edns == nil else { throw fail("a second OPT record", at: start) }
                guard name.isRoot else { throw fail("an OPT record whose owner is not the root", at: start) }
                edns = try readEDNS(payloadSize: classValue, ttl: ttl, end: end)
                continue
            }
            let data = try readData(type: type, end: end)
            guard offset == end else {
                throw fail("\(type) record data is \(length) bytes but its fields span \(offset - (end - length))")
            }
            records.append(DNSRecord(name: name, class: DNSClass(rawValue: classValue), ttl: ttl, data: data))
        }
        return (records, edns)
    }

    private mutating func readEDNS(payloadSize: UInt16, ttl: UInt32, end: Int) throws(DNSWireError) -> EDNS {
        var options: [EDNSOption] = []
        while offset < end {
            let code = try readUInt16()
            let length = Int(try readUInt16())
            guard offset + length <= end else { throw fail("an EDNS option runs past its record") }
            options.append(EDNSOption(code: code, data: try readBytes(length, for: "an EDNS option")))
        }
        return EDNS(
            udpPayloadSize: payloadSize,
            extendedResponseCode: UInt8(ttl >> 24),
            version: UInt8(truncatingIfNeeded: ttl >> 16),
            dnssecOK: ttl & 0x8000 != 0,
            options: options
        )
    }

    private mutating func readData(type: DNSType, end: Int) throws(DNSWireError) -> DNSRecordData {
        let length = end - offset
        switch type {
        case .a:
            guard length == 4 else { throw fail("an A record needs 4 bytes of data, got \(length)") }
            return .a(IPv4Address(value: try readUInt32()))
        case .aaaa:
            guard length == 16 else { throw fail("an AAAA record needs 16 bytes of data, got \(length)") }
            return .aaaa(IPv6Address(bytes: try readBytes(16, for: "an IPv6 address"))!)
        case .ns: return .ns(try readName(before: end))
        case .cname: return .cname(try readName(before: end))
        case .ptr: return .ptr(try readName(before: end))
        case .mx:
            let preference = try readUInt16()
            return .mx(preference: preference, exchange: try readName(before: end))
        case .soa:
            let primary = try readName(before: end)
            let mailbox = try readName(before: end)
            guard end - offset == 20 else { throw fail("an SOA record needs 20 bytes after its names, got \(end - offset)") }
            return .soa(DNSSOA(
                primaryServer: primary, responsibleMailbox: mailbox, serial: try readUInt32(), refresh: try readUInt32(),
                retry: try readUInt32(), expire: try readUInt32(), minimum: try readUInt32()))
        case .srv:
            guard length >= 7 else { throw fail("an SRV record needs at least 7 bytes of data, got \(length)") }
            let priority = try readUInt16()
            let weight = try readUInt16()
            let port = try readUInt16()
            return .srv(priority: priority, weight: weight, port: port, target: try readName(before: end))
        case .txt:
            var strings: [[UInt8]] = []
            while offset < end {
                let count = Int(try readUInt8())
                guard offset + count <= end else { throw fail("a TXT string runs past its record") }
                strings.append(try readBytes(count, for: "a TXT string"))
            }
            guard !strings.isEmpty else { throw fail("a TXT record needs at least one string") }
            return .txt(strings)
        default:
            return .other(type: type, bytes: try readBytes(length, for: "record data"))
        }
    }

    /// A name inside record data: its own bytes must end by `end` (pointers may still lead elsewhere).
    private mutating func readName(before end: Int) throws(DNSWireError) -> DNSName {
        let name = try readName()
        guard offset <= end else { throw fail("a name runs past its record's data") }
        return name
    }
}
