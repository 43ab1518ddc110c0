/// A domain name as a sequence of labels (RFC 1035 §3.1), kept in the case it was read in.
///
/// Equality and hashing ignore ASCII case (RFC 4343), so a name read from a query finds the zone's
/// lower-case name while the answer can echo the question's case. For the same reason the encoder
/// compresses a name into an earlier one that differs only in case: it then reads back in that case.
public struct DNSName: Sendable, CustomStringConvertible {
    /// The labels, most specific first, without the empty root label.
    public private(set) var labels: [[UInt8]]

    public static let root = DNSName(validatedLabels: [])
    /// The longest name on the wire (RFC 1035 §2.3.4), counting the length bytes and the root byte.
    public static let maximumWireLength = 255
    public static let maximumLabelLength = 63

    init(validatedLabels labels: [[UInt8]]) {
        self.labels = labels
    }

    /// Parses dotted text such as `web.default.svc.weft.internal` (a trailing dot is optional).
    /// `\.` and `\\` escape a dot or backslash inside a label.
    public init(_ text: String) throws(DNSNameError) {
        var labels: [[UInt8]] = []
        var label: [UInt8] = []
        var escaped = false
        let bytes = Array(text.utf8)
        if bytes == [UInt8(ascii: ".")] {
            self.init(validatedLabels: [])
            return
        }
        for byte in bytes {
            if escaped {
                label.append(byte)
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: ".") {
                guard !label.isEmpty else { throw .emptyLabel(text) }
                labels.append(label)
                label = []
            } else {
                label.append(byte)
            }
        }
        if !label.isEmpty { labels.append(label) }
        try self.init(labels: labels, text: text)
    }

    /// A name from raw labels; checks the label and total lengths.
    public init(labels: [[UInt8]]) throws(DNSNameError) {
        try self.init(labels: labels, text: nil)
    }

    private init(labels: [[UInt8]], text: String?) throws(DNSNameError) {
        var length = 1
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel(text ?? "") }
            guard label.count <= Self.maximumLabelLength else { throw .labelTooLong(text ?? "") }
            length += label.count + 1
        }
        guard length <= Self.maximumWireLength else { throw .nameTooLong(text ?? "") }
        self.labels = labels
    }

    /// The length of the uncompressed wire form.
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    public var isRoot: Bool { labels.isEmpty }

    /// This name with `prefix` labels in front.
    public func prepending(_ prefix: [UInt8]) throws(DNSNameError) -> DNSName {
        try DNSName(labels: [prefix] + labels)
    }

    /// Whether this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        let offset = labels.count - other.labels.count
        for index in other.labels.indices where !Self.equalIgnoringCase(labels[offset + index], other.labels[index]) {
            return false
        }
        return true
    }

    /// The labels in front of `zone` (most specific first), or nil when this name is not in it.
    public func labels(below zone: DNSName) -> ArraySlice<[UInt8]>? {
        guard isSubdomain(of: zone) else { return nil }
        return labels[0..<(labels.count - zone.labels.count)]
    }

    /// Dotted text with a trailing dot; dots and backslashes inside labels are escaped, other bytes
    /// outside printable ASCII appear as `\DDD`.
    public var description: String {
        if labels.isEmpty { return "." }
        var text = ""
        for label in labels {
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"):
                    text.append("\\")
                    text.append(Character(Unicode.Scalar(byte)))
                case 0x21...0x7E:
                    text.append(Character(Unicode.Scalar(byte)))
                default:
                    let digits = String(byte)
                    text.append("\\" + String(repeating: "0", count: 3 - digits.count) + digits)
                }
            }
            text.append(".")
        }
        return text
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    static func equalIgnoringCase(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        for index in left.indices where lowercased(left[index]) != lowercased(right[index]) {
            return false
        }
        return true
    }

    /// The name in lower case: the form zones key their names by.
    public var lowercased: DNSName {
        DNSName(validatedLabels: labels.map { $0.map(Self.lowercased) })
    }
}

extension DNSName: Hashable {
    public static func == (left: DNSName, right: DNSName) -> Bool {
        guard left.labels.count == right.labels.count else { return false }
        for index in left.labels.indices where !equalIgnoringCase(left.labels[index], right.labels[index]) {
            return false
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(labels.count)
        for label in labels {
            hasher.combine(label.count)
            for byte in label { hasher.combine(Self.lowercased(byte)) }
        }
    }
}

public enum DNSNameError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyLabel(String)
    case labelTooLong(String)
    case nameTooLong(String)

    public var description: String {
        switch self {
        case .emptyLabel(let text): "\"\(text)\" is not a domain name: it has an empty label"
        case .labelTooLong(let text): "\"\(text)\" is not a domain name: a label is longer than 63 bytes"
        case .nameTooLong(let text): "\"\(text)\" is not a domain name: it is longer than 255 bytes"
        }
    }
}
