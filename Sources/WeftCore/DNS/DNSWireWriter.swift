extension DNSMessage {
    /// The largest message: what the two-byte TCP length prefix allows.
    public static let maximumLength = 65_535

    /// The wire form, names compressed (RFC 1035 §4.1.4), in at most `maximumLength` bytes.
    ///
    /// When the answer or authority records do not all fit, whole records are kept as far as they fit,
    /// the rest (and the additional section) are dropped and TC is set; additional records that do not fit
    /// are dropped without TC (RFC 2181 §9). The OPT record is always kept. At least the header and the
    /// question must fit.
    public func encoded(maximumLength: Int = DNSMessage.maximumLength) -> [UInt8] {
        var writer = DNSWireWriter()
        writer.write(self, maximumLength: max(maximumLength, DNSHeader.length))
        return writer.bytes
    }
}

/// Builds one message; remembers where each written name (and suffix) starts, for compression.
struct DNSWireWriter {
    private(set) var bytes: [UInt8] = []
    private var names: [DNSName: Int] = [:]
    private var namesByOffset: [(offset: Int, name: DNSName)] = []

    init() {
        bytes.reserveCapacity(512)
    }

    mutating func write(_ message: DNSMessage, maximumLength: Int) {
        var flags = message.flags
        writeUInt16(message.id)
        writeUInt16(flags.rawValue)
        writeUInt16(UInt16(clamping: message.questions.count))
        for _ in 0..<3 { writeUInt16(0) }  // record counts: patched below
        for question in message.questions.prefix(Int(UInt16.max)) {
            writeName(question.name, compress: true)
            writeUInt16(question.type.rawValue)
            writeUInt16(question.class.rawValue)
        }
        let optLength = message.edns.map { 11 + $0.options.reduce(0) { $0 + 4 + $1.data.count } } ?? 0
        let limit = maximumLength - optLength

        let answers = writeRecords(message.answers, limit: limit)
        var authorities = 0
        var additionals = 0
        if answers == message.answers.count {
            authorities = writeRecords(message.authorities, limit: limit)
            if authorities == message.authorities.count {
                additionals = writeRecords(message.additionals, limit: limit)
            }
        }
        if answers < message.answers.count || authorities < message.authorities.count {
            flags.isTruncated = true
            patchUInt16(at: 2, flags.rawValue)
        }
        if let edns = message.edns {
            writeOPT(edns)
            additionals += 1
        }
        patchUInt16(at: 6, UInt16(answers))
        patchUInt16(at: 8, UInt16(authorities))
        patchUInt16(at: 10, UInt16(additionals))
    }

    /// Writes records while each fits within `limit` bytes; returns how many were written.
    private mutating func writeRecords(_ records: [DNSRecord], limit: Int) -> Int {
        for (index, record) in records.enumerated() {
            let start = bytes.count
            guard index < Int(UInt16.max), writeRecord(record), bytes.count <= limit else {
                rollBack(to: start)
                return index
            }
        }
        return records.count
    }

    /// Writes one record; false when its data would exceed 65,535 bytes.
    private mutating func writeRecord(_ record: DNSRecord) -> Bool {
        writeName(record.name, compress: true)
        writeUInt16(record.type.rawValue)
        writeUInt16(record.class.rawValue)
        writeUInt32(record.ttl)
        let lengthAt = bytes.count
        writeUInt16(0)
        switch record.data {
        case .a(let address):
            writeUInt32(address.value)
        case .aaaa(let address):
            bytes.append(contentsOf: address.bytes)
        case .ns(let name), .cname(let name), .ptr(let name):
            writeName(name, compress: true)
        case .mx(let preference, let exchange):
            writeUInt16(preference)
            writeName(exchange, compress: true)
        case .soa(let soa):
            writeName(soa.primaryServer, compress: true)
            writeName(soa.responsibleMailbox, compress: true)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { writeUInt32(value) }
        case .srv(let priority, let weight, let port, let target):
            writeUInt16(priority)
            writeUInt16(weight)
            writeUInt16(port)
            writeName(target, compress: false)  // RFC 2782: the target is not compressed
        case .txt(let strings):
            for string in strings {
                let chunk = string.prefix(255)
                bytes.append(UInt8(chunk.count))
                bytes.append(contentsOf: chunk)
            }
        case .other(_, let data):
            bytes.append(contentsOf: data)
        }
        let length = bytes.count - lengthAt - 2
        guard length <= Int(UInt16.max) else { return false }
        patchUInt16(at: lengthAt, UInt16(length))
        return true
    }

    private mutating func writeOPT(_ edns: EDNS) {
        bytes.append(0)  // the root
        writeUInt16(DNSType.opt.rawValue)
        writeUInt16(edns.udpPayloadSize)
        writeUInt32(UInt32(edns.extendedResponseCode) << 24 | UInt32(edns.version) << 16 | (edns.dnssecOK ? 0x8000 : 0))
        writeUInt16(UInt16(clamping: edns.options.reduce(0) { $0 + 4 + $1.data.count }))
        for option in edns.options {
            writeUInt16(option.code)
            writeUInt16(UInt16(clamping: option.data.count))
            bytes.append(contentsOf: option.data)
        }
    }

    /// Writes `name`, ending in a pointer to the longest suffix already written when `compress`; records
    /// the new suffixes it writes as targets for later names.
    private mutating func writeName(_ name: DNSName, compress: Bool) {
        let labels = name.labels
        for index in labels.indices {
            let suffix = DNSName(validatedLabels: Array(labels[index...]))
            if compress, let target = names[suffix] {
                writeUInt16(0xC000 | UInt16(target))
                return
            }
            if bytes.count <= 0x3FFF && names[suffix] == nil {
                names[suffix] = bytes.count
                namesByOffset.append((bytes.count, suffix))
            }
            bytes.append(UInt8(labels[index].count))
            bytes.append(contentsOf: labels[index])
        }
        bytes.append(0)
    }

    /// Forgets everything written from `offset` on.
    private mutating func rollBack(to offset: Int) {
        bytes.removeSubrange(offset...)
        while let last = namesByOffset.last, last.offset >= offset {
            names[last.name] = nil
            namesByOffset.removeLast()
        }
    }

    private mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    private mutating func writeUInt32(_ value: UInt32) {
        writeUInt16(UInt16(value >> 16))
        writeUInt16(UInt16(truncatingIfNeeded: value))
    }

    private mutating func patchUInt16(at offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
