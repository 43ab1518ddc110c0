/// Answers DNS packets for one server thread: `DNSQueryHandler` decides, and the encoded answers of the
/// cluster zone are kept as templates, so a repeated question is answered by copying bytes (new ID,
/// the client's flags, its question in its own case, an OPT record when it sent one) instead of decoding
/// and encoding. Templates are dropped whenever the zone changes. Pure; one instance per event loop.
public struct DNSResponder {
    public enum Outcome {
        /// Send these bytes.
        case respond([UInt8])
        /// Resolve upstream; answer with `DNSQueryHandler.relay` within `udpLimit` (UDP).
        case forward(DNSMessage, udpLimit: Int)
        case drop
    }

    /// The lower-cased wire name and the type and class; hashed once, as it is read (FNV-1a), rather
    /// than byte by byte by the dictionary.
    private struct Key: Hashable {
        var name: [UInt8]
        var typeAndClass: UInt32
        var hash: UInt64

        static func == (left: Key, right: Key) -> Bool {
            left.hash == right.hash && left.typeAndClass == right.typeAndClass && left.name == right.name
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(hash)
        }
    }

    private var templates: [Key: [UInt8]] = [:]
    private var zoneIdentity: UInt64?
    private var random: SplitMix64
    public let capacity: Int

    public init(capacity: Int = 100_000, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        self.capacity = capacity
        random = SplitMix64(seed: seed)
    }

    /// The answer to `packet` (a UDP datagram, or one TCP message when `overTCP`).
    public mutating func handle(_ packet: UnsafeRawBufferPointer, zone: ClusterZone, canForward: Bool, overTCP: Bool) -> Outcome {
        if zoneIdentity != zone.identity &+ (canForward ? 1 : 0) {
            templates.removeAll(keepingCapacity: true)
            zoneIdentity = zone.identity &+ (canForward ? 1 : 0)
        }
        let simple = SimpleQuery(packet)
        if let simple, let template = templates[simple.key] {
            let limit = overTCP ? DNSMessage.maximumLength - 2 : simple.udpLimit
            if let bytes = simple.answer(from: template, packet: packet), bytes.count <= limit {
                return .respond(bytes)
            }
        }
        switch DNSQueryHandler.handle(packet, zone: zone, canForward: canForward, random: &random) {
        case .drop:
            return .drop
        case .forward(let query):
            return .forward(query, udpLimit: DNSQueryHandler.responseLimit(for: query, overTCP: false))
        case .respond(let response, let udpLimit):
            if let simple, response.flags.isAuthoritative, let question = response.questions.first, !zone.shuffles(question.name) {
                remember(response, for: simple.key)
            }
            return .respond(response.encoded(maximumLength: overTCP ? DNSMessage.maximumLength - 2 : udpLimit))
        }
    }

    public mutating func handle(_ packet: [UInt8], zone: ClusterZone, canForward: Bool, overTCP: Bool) -> Outcome {
        packet.withUnsafeBytes { handle($0, zone: zone, canForward: canForward, overTCP: overTCP) }
    }

    private mutating func remember(_ response: DNSMessage, for key: Key) {
        var canonical = response
        canonical.id = 0
        canonical.flags.recursionDesired = false
        canonical.flags.checkingDisabled = false
        canonical.edns = nil
        canonical.questions[0].name = canonical.questions[0].name.lowercased
        let bytes = canonical.encoded()
        guard DNSHeader(bytes)?.flags.isTruncated == false else { return }
        if templates.count >= capacity { templates.removeAll(keepingCapacity: true) }
        templates[key] = bytes
    }

    /// A query in the common shape, read without decoding: one question whose name has no compression
    /// pointer, no other records but at most one OPT record of version 0, opcode QUERY.
    private struct SimpleQuery {
        var key: Key
        var questionEnd: Int
        var hasEDNS: Bool
        var udpLimit: Int

        init?(_ packet: UnsafeRawBufferPointer) {
            guard let header = DNSHeader(packet), !header.flags.isResponse, header.flags.opcode == .query,
                  header.questionCount == 1, header.answerCount == 0, header.authorityCount == 0, header.additionalCount <= 1
            else { return nil }
            var offset = DNSHeader.length
            var name: [UInt8] = []
            name.reserveCapacity(48)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            while true {
                guard offset < packet.count else { return nil }
                let length = Int(packet[offset])
                guard length & 0xC0 == 0, offset + 1 + length <= packet.count, name.count + length + 1 < DNSName.maximumWireLength else { return nil }
                name.append(UInt8(length))
                hash = (hash ^ UInt64(length)) &* 0x100_0000_01b3
                if length == 0 { offset += 1; break }
                for index in (offset + 1)...(offset + length) {
                    let byte = DNSName.lowercased(packet[index])
                    name.append(byte)
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                }
                offset += 1 + length
            }
            guard offset + 4 <= packet.count else { return nil }
            let typeAndClass = UInt32(packet[offset]) << 24 | UInt32(packet[offset + 1]) << 16 | UInt32(packet[offset + 2]) << 8 | UInt32(packet[offset + 3])
            offset += 4
            questionEnd = offset
            key = Key(name: name, typeAndClass: typeAndClass, hash: hash ^ UInt64(typeAndClass))
            hasEDNS = header.additionalCount == 1
            udpLimit = 512
            if hasEDNS {
                // The OPT record: root owner, type 41, class = payload size, TTL = extended RCODE, version, flags.
                guard offset + 11 <= packet.count, packet[offset] == 0, packet[offset + 1] == 0, packet[offset + 2] == 41,
                      packet[offset + 6] == 0 /* version */ else { return nil }
                let payload = Int(packet[offset + 3]) << 8 | Int(packet[offset + 4])
                let dataLength = Int(packet[offset + 9]) << 8 | Int(packet[offset + 10])
                guard offset + 11 + dataLength == packet.count else { return nil }
                udpLimit = min(max(512, payload), DNSQueryHandler.maximumUDPPayload)
            } else {
                guard offset == packet.count else { return nil }
            }
        }

        /// `template` made this query's answer.
        func answer(from template: [UInt8], packet: UnsafeRawBufferPointer) -> [UInt8]? {
            guard template.count >= questionEnd else { return nil }
            var bytes = template
            bytes[0] = packet[0]
            bytes[1] = packet[1]
            bytes[2] |= packet[2] & 0x01  // RD
            bytes[3] |= packet[3] & 0x10  // CD
            for index in DNSHeader.length..<questionEnd { bytes[index] = packet[index] }
            if hasEDNS {
                let additional = (Int(bytes[10]) << 8 | Int(bytes[11])) + 1
                bytes[10] = UInt8(additional >> 8)
                bytes[11] = UInt8(additional & 0xFF)
                let size = UInt16(DNSQueryHandler.maximumUDPPayload)
                bytes += [0, 0, 41, UInt8(size >> 8), UInt8(size & 0xFF), 0, 0, 0, 0, 0, 0]
            }
            return bytes
        }
    }
}
