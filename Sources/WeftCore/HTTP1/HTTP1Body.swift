/// Finds where an HTTP/1.x message body ends in bytes that arrive in pieces, without copying them:
/// a proxy forwards each piece as it is (chunk framing included) and learns when the message is
/// over, so the next message on the connection starts at the right byte. The payload (the body
/// without chunk framing) is reported as ranges for a receiver that cannot take chunked coding.
public struct HTTP1BodyReader: Sendable, Equatable {
    private enum State: Sendable, Equatable {
        case length(remaining: Int)
        case untilClose
        /// Hex digits of a chunk size (`digits` so far).
        case chunkSize(value: Int, digits: Int)
        /// After the size: extensions, up to CR.
        case chunkExtension(size: Int)
        case chunkSizeLF(size: Int)
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        /// At the start of a trailer field line, or of the final empty line.
        case trailerLineStart
        case trailerLine
        case trailerLineLF
        case finalLF
        case done
    }

    /// At most this many bytes of chunk extensions per chunk and of trailer fields in all.
    public static let maxFramingBytes = 16 * 1024

    private var state: State
    private var framingBytes = 0

    public init(_ framing: HTTP1Head.Framing) {
        switch framing {
        case .none: state = .done
        case .length(let n): state = .length(remaining: n)
        case .chunked: state = .chunkSize(value: 0, digits: 0)
        case .untilClose: state = .untilClose
        }
    }

    /// Whether the body has ended.
    public var isComplete: Bool { state == .done }

    /// Whether the body ends only when the connection closes.
    public var endsWithClose: Bool { state == .untilClose }

    /// Reads from the start of `bytes`: returns how many belong to this body (all of them, unless
    /// the body ended before their end) and reports each range of payload bytes.
    public mutating func read(_ bytes: UnsafeRawBufferPointer, payload: (Range<Int>) -> Void) throws(HTTP1ParseError) -> Int {
        var i = 0
        let count = bytes.count
        while i < count {
            switch state {
            case .done:
                return i
            case .untilClose:
                payload(i..<count)
                return count
            case .length(let remaining):
                let n = min(remaining, count - i)
                payload(i..<(i + n))
                i += n
                state = remaining == n ? .done : .length(remaining: remaining - n)
            case .chunkSize(let value, let digits):
                let b = bytes[i]
                if let d = Self.hexValue(b) {
                    guard digits < 15 else { throw .chunk }
                    state = .chunkSize(value: value << 4 | d, digits: digits + 1)
                } else if digits > 0, b == 13 {
                    state = .chunkSizeLF(size: value)
                } else if digits > 0, b == 59 || b == 32 || b == 9 {
                    // `;` starts an extension; whitespace may precede it (BWS).
                    framingBytes = 0
                    state = .chunkExtension(size: value)
                } else {
                    throw .chunk
                }
                i += 1
            case .chunkExtension(let size):
                let b = bytes[i]
                if b == 13 {
                    state = .chunkSizeLF(size: size)
                } else {
                    guard HTTP1Parser.isFieldValueByte(b) else { throw .chunk }
                    framingBytes += 1
                    guard framingBytes <= Self.maxFramingBytes else { throw .chunk }
                }
                i += 1
            case .chunkSizeLF(let size):
                guard bytes[i] == 10 else { throw .chunk }
                i += 1
                if size == 0 {
                    framingBytes = 0
                    state = .trailerLineStart
                } else {
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, count - i)
                payload(i..<(i + n))
                i += n
                state = remaining == n ? .chunkDataCR : .chunkData(remaining: remaining - n)
            case .chunkDataCR:
                guard bytes[i] == 13 else { throw .chunk }
                i += 1
                state = .chunkDataLF
            case .chunkDataLF:
                guard bytes[i] == 10 else { throw .chunk }
                i += 1
                state = .chunkSize(value: 0, digits: 0)
            case .trailerLineStart:
                if bytes[i] == 13 {
                    state = .finalLF
                } else {
                    guard HTTP1Parser.isTokenByte(bytes[i]) else { throw .chunk }
                    state = .trailerLine
                    framingBytes += 1
                }
                i += 1
            case .trailerLine:
                let b = bytes[i]
                if b == 13 {
                    state = .trailerLineLF
                } else {
                    guard HTTP1Parser.isFieldValueByte(b) else { throw .chunk }
                    framingBytes += 1
                    guard framingBytes <= Self.maxFramingBytes else { throw .chunk }
                }
                i += 1
            case .trailerLineLF:
                guard bytes[i] == 10 else { throw .chunk }
                i += 1
                state = .trailerLineStart
            case .finalLF:
                guard bytes[i] == 10 else { throw .chunk }
                i += 1
                state = .done
            }
        }
        return i
    }

    @inline(__always) private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 48...57: Int(b - 48)
        case 65...70: Int(b - 55)
        case 97...102: Int(b - 87)
        default: nil
        }
    }
}
