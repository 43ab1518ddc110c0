/// Decides what a DNS server does with one incoming packet (pure): answer from the cluster zone, answer
/// an error, hand the query to the forwarder, or drop it.
public enum DNSDisposition: Sendable {
    /// Send this response; over UDP in at most `udpLimit` bytes (the requester's EDNS size within ours).
    case respond(DNSMessage, udpLimit: Int)
    /// Not the cluster's name: resolve it upstream, then answer with `DNSQueryHandler.relay`.
    case forward(DNSMessage)
    /// No answer at all: fewer than 12 bytes, or a response (never answer those, or two servers could
    /// bounce packets at each other forever).
    case drop
}

public enum DNSQueryHandler {
    /// The largest UDP payload this server advertises and sends (the DNS flag day 2020 default, which
    /// avoids IP fragmentation on any common path).
    public static let maximumUDPPayload = 1232

    /// What to do with `packet`. `canForward` says whether any upstream is configured; without one,
    /// names outside the zone are REFUSED.
    public static func handle<Random: RandomNumberGenerator>(
        _ packet: UnsafeRawBufferPointer, zone: ClusterZone, canForward: Bool, random: inout Random
    ) -> DNSDisposition {
        guard let header = DNSHeader(packet), !header.flags.isResponse else { return .drop }
        let query: DNSMessage
        do {
            query = try DNSMessage(decoding: packet)
        } catch {
            var response = DNSMessage(id: header.id, flags: responseFlags(for: header.flags, canForward: canForward))
            response.responseCode = .formatError
            return .respond(response, udpLimit: 512)
        }
        let udpLimit = responseLimit(for: query, overTCP: false)
        var response = DNSMessage(id: query.id, flags: responseFlags(for: query.flags, canForward: canForward), questions: query.questions)
        if query.edns != nil {
            response.edns = EDNS(udpPayloadSize: UInt16(maximumUDPPayload))
        }
        guard query.flags.opcode == .query else {
            response.responseCode = .notImplemented
            return .respond(response, udpLimit: udpLimit)
        }
        guard query.edns.map({ $0.version == 0 }) ?? true else {
            response.questions = []
            response.responseCode = .badVersion
            return .respond(response, udpLimit: udpLimit)
        }
        guard query.questions.count == 1, query.answers.isEmpty, query.authorities.isEmpty, let question = query.questions.first else {
            response.responseCode = .formatError
            return .respond(response, udpLimit: udpLimit)
        }
        if question.type == .axfr || question.type.rawValue == 251 /* IXFR */ {
            response.responseCode = .refused
            return .respond(response, udpLimit: udpLimit)
        }
        if zone.isAuthoritative(for: question.name) {
            let answer = zone.answer(question, random: &random)
            response.flags.isAuthoritative = answer.responseCode != .refused
            response.responseCode = answer.responseCode
            response.answers = answer.answers
            response.authorities = answer.authorities
            response.additionals = answer.additionals
            return .respond(response, udpLimit: udpLimit)
        }
        guard canForward else {
            response.responseCode = .refused
            return .respond(response, udpLimit: udpLimit)
        }
        return .forward(query)
    }

    public static func handle<Random: RandomNumberGenerator>(
        _ packet: [UInt8], zone: ClusterZone, canForward: Bool, random: inout Random
    ) -> DNSDisposition {
        packet.withUnsafeBytes { handle($0, zone: zone, canForward: canForward, random: &random) }
    }

    /// The largest response `query` may get over UDP: 512 bytes without EDNS (RFC 1035 §4.2.1), else the
    /// requester's size within this server's own limit.
    public static func responseLimit(for query: DNSMessage?, overTCP: Bool) -> Int {
        if overTCP { return DNSMessage.maximumLength }
        guard let edns = query?.edns else { return 512 }
        return min(max(512, Int(edns.udpPayloadSize)), maximumUDPPayload)
    }

    /// The response to `query` built from what an upstream answered (`upstream`, or nil when every
    /// upstream failed: SERVFAIL).
    public static func relay(_ upstream: DNSMessage?, to query: DNSMessage) -> DNSMessage {
        var flags = responseFlags(for: query.flags, canForward: true)
        var response = DNSMessage(id: query.id, flags: flags, questions: query.questions)
        if query.edns != nil {
            response.edns = EDNS(udpPayloadSize: UInt16(maximumUDPPayload))
        }
        guard let upstream else {
            response.responseCode = .serverFailure
            return response
        }
        flags.authenticData = upstream.flags.authenticData && query.flags.authenticData
        response.flags = flags
        response.responseCode = upstream.responseCode
        response.answers = upstream.answers
        response.authorities = upstream.authorities
        response.additionals = upstream.additionals
        return response
    }

    private static func responseFlags(for queryFlags: DNSFlags, canForward: Bool) -> DNSFlags {
        var flags = DNSFlags()
        flags.isResponse = true
        flags.opcode = queryFlags.opcode
        flags.recursionDesired = queryFlags.recursionDesired
        flags.checkingDisabled = queryFlags.checkingDisabled
        flags.recursionAvailable = canForward
        return flags
    }
}
