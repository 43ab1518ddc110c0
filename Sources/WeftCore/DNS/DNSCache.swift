/// A bounded cache of upstream answers keyed by question (pure: the caller passes the time).
///
/// Positive answers live as long as their smallest TTL; NXDOMAIN and NODATA as long as the SOA in their
/// authority section says (the smaller of its TTL and MINIMUM, RFC 2308 §5), and are not cached without
/// one. Failures, truncated answers and TTL 0 are not cached. TTLs are capped by `maximumTTL`, and served
/// answers count their TTLs down. When full, the oldest entry goes first.
public struct DNSCache: Sendable {
    public struct Key: Hashable, Sendable {
        var name: DNSName
        var type: DNSType
        var `class`: DNSClass

        public init(_ question: DNSQuestion) {
            name = question.name
            type = question.type
            self.class = question.class
        }
    }

    /// A cached answer, its TTLs already counted down.
    public struct Answer: Sendable, Hashable {
        public var responseCode: DNSResponseCode
        public var answers: [DNSRecord]
        public var authorities: [DNSRecord]
        public var additionals: [DNSRecord]
    }

    private struct Entry: Sendable {
        var answer: Answer
        var storedAt: Double
        var expiresAt: Double
    }

    public let capacity: Int
    public let maximumTTL: UInt32
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []
    private var orderStart = 0

    public init(capacity: Int = 10_000, maximumTTL: UInt32 = 3600) {
        self.capacity = max(1, capacity)
        self.maximumTTL = maximumTTL
    }

    public var count: Int { entries.count }

    /// Stores `response` as the answer to `question`, if it may be cached. `now` is in seconds on a
    /// monotonic clock.
    public mutating func store(_ response: DNSMessage, for question: DNSQuestion, now: Double) {
        guard let ttl = cacheTTL(of: response), ttl > 0 else { return }
        let key = Key(question)
        if entries[key] == nil {
            while entries.count >= capacity, orderStart < order.count {
                entries[order[orderStart]] = nil
                orderStart += 1
            }
            order.append(key)
            if orderStart > 1024 && orderStart * 2 > order.count {
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
        let answer = Answer(responseCode: response.responseCode, answers: response.answers,
                            authorities: response.authorities, additionals: response.additionals)
        entries[key] = Entry(answer: answer, storedAt: now, expiresAt: now + Double(ttl))
    }

    /// The cached answer to `question` with TTLs reduced by the time it spent here, or nil.
    public mutating func lookup(_ question: DNSQuestion, now: Double) -> Answer? {
        let key = Key(question)
        guard let entry = entries[key] else { return nil }
        guard now < entry.expiresAt else {
            entries[key] = nil
            return nil
        }
        let elapsed = UInt32(max(0, now - entry.storedAt))
        func age(_ records: [DNSRecord]) -> [DNSRecord] {
            records.map { record in
                var record = record
                record.ttl = min(record.ttl, maximumTTL) - min(elapsed, min(record.ttl, maximumTTL))
                return record
            }
        }
        var answer = entry.answer
        answer.answers = age(answer.answers)
        answer.authorities = age(answer.authorities)
        answer.additionals = age(answer.additionals)
        return answer
    }

    /// How long `response` may be cached, nil when not at all.
    func cacheTTL(of response: DNSMessage) -> UInt32? {
        guard !response.flags.isTruncated else { return nil }
        switch response.responseCode {
        case .noError where !response.answers.isEmpty:
            return min(response.answers.map(\.ttl).min() ?? 0, maximumTTL)
        case .noError, .nameError:
            for record in response.authorities {
                if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum, maximumTTL) }
            }
            return nil
        default:
            return nil
        }
    }
}
