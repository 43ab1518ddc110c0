/// The head of an HTTP/1.x message (RFC 9112), as a proxy that forwards bytes needs it: where it ends,
/// how its body is framed, whether the connection stays open, and whether any header must go before
/// the head is forwarded. Nothing is copied out of the bytes: headers the proxy does not act on are
/// only validated, and a head without hop-by-hop headers is forwarded exactly as it arrived.
///
/// The parser is strict where leniency lets two parties frame one message differently (request
/// smuggling): CRLF line ends only, no whitespace before a field's colon, no line folding, no control
/// bytes in values, one Content-Length value, and a request with both Content-Length and
/// Transfer-Encoding is refused.
public struct HTTP1Head: Sendable, Equatable {
    public enum Framing: Sendable, Equatable {
        /// No body.
        case none
        /// A body of exactly this many bytes (more than 0).
        case length(Int)
        /// Chunked transfer coding.
        case chunked
        /// A response body that ends when the connection closes.
        case untilClose
    }

    /// Bytes of the head, from the start line's first byte to the empty line's LF.
    public var length = 0
    /// Where the start line begins (a request may follow empty lines, which are skipped).
    public var start = 0
    /// The request's method (requests only).
    public var method = HTTP1Method.other
    /// The response's status code (responses only).
    public var status = 0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion = 1
    /// Where `HTTP/1.x` is in the start line.
    public var versionRange = 0..<0
    /// The index just past the start line's CRLF.
    public var startLineEnd = 0
    public var framing = Framing.none
    /// Whether the sender keeps the connection open after this message (version default and `Connection`).
    public var keepAlive = true
    /// Whether the head has a hop-by-hop field (RFC 9110 §7.6.1) other than Transfer-Encoding, a field a
    /// `Connection` header names, or a Content-Length beside chunked coding: forwarding it needs
    /// `keptFieldLines`. A `Connection` field whose only option is keep-alive does not count: a proxy
    /// that keeps the next hop's connection alive too may forward it as its own option (§7.6.1).
    public var hasHopByHopFields = false
    /// Whether the head has a `Connection` field (which a rebuilt head replaces with its own).
    public var hasConnectionField = false
    /// `Expect: 100-continue` (requests).
    public var expectsContinue = false
    /// Whether the message asks for (a request) or confirms (a 101 response) a protocol switch: an
    /// HTTP/1.1 head with an `Upgrade` field and the `upgrade` option in `Connection` (RFC 9110 §7.8;
    /// an HTTP/1.0 one's `Upgrade` is ignored).
    public var upgrade = false

    public init() {}

    /// Whether a response to a request with this head may be retried on another backend (RFC 9110 §9.2.2).
    public var isIdempotent: Bool {
        switch method {
        case .get, .head, .options, .put, .delete, .trace: true
        case .post, .patch, .connect, .other: false
        }
    }
}

public enum HTTP1Method: Sendable, Equatable {
    case get, head, post, put, delete, options, trace, patch, connect, other
}

/// Why bytes are not an acceptable HTTP/1.x message; `description` is safe to show to the sender.
public struct HTTP1ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    public static let tooLarge = HTTP1ParseError("the message head is larger than \(HTTP1Parser.maxHeadBytes) bytes")
    public static let lineEnd = HTTP1ParseError("a line of the head does not end with CRLF")
    public static let startLine = HTTP1ParseError("malformed start line")
    public static let version = HTTP1ParseError("unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are supported)")
    public static let fieldName = HTTP1ParseError("malformed header field name")
    public static let fieldValue = HTTP1ParseError("a header field value has a control character")
    public static let folding = HTTP1ParseError("obsolete line folding in a header field")
    public static let contentLength = HTTP1ParseError("invalid Content-Length")
    public static let transferEncoding = HTTP1ParseError("a request's Transfer-Encoding must end with chunked")
    public static let lengthAndChunked = HTTP1ParseError("a request with both Content-Length and Transfer-Encoding")
    public static let connect = HTTP1ParseError("CONNECT is not supported by an http listener")
    public static let chunk = HTTP1ParseError("malformed chunked body")
}

public enum HTTP1Parser {
    /// The largest head accepted (NIO's and Node's default too is 80 KiB; HAProxy's 16 KiB).
    public static let maxHeadBytes = 64 * 1024

    /// The end of the head (the index after its empty line) in `bytes`, searching from `from` (a
    /// previous search's `resume`, so bytes arriving one at a time are not scanned again and again).
    /// Empty lines before a request's start line are skipped (RFC 9112 §2.2), so `from` 0 with a
    /// leading CRLF does not end the head at once.
    public static func headEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> (end: Int?, resume: Int) {
        let lead = leadingEmptyLines(bytes)
        var i = max(from, lead)
        let count = bytes.count
        while i + 3 < count {
            if bytes[i + 3] == 10, bytes[i + 2] == 13, bytes[i + 1] == 10, bytes[i] == 13 { return (i + 4, i + 4) }
            i += 1
        }
        return (nil, max(i, lead))
    }

    /// How many bytes of CRLF pairs `bytes` starts with.
    static func leadingEmptyLines(_ bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i + 1 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10 { i += 2 }
        return i
    }

    /// Parses a complete request head: `bytes` ends with the empty line (`headEnd`'s `end`).
    public static func parseRequest(_ bytes: UnsafeRawBufferPointer) -> Result<HTTP1Head, HTTP1ParseError> {
        var head = HTTP1Head()
        head.length = bytes.count
        head.start = leadingEmptyLines(bytes)
        var i = head.start
        // method SP
        let methodStart = i
        while i < bytes.count, isTokenByte(bytes[i]) { i += 1 }
        guard i > methodStart, i < bytes.count, bytes[i] == 32 else { return .failure(.startLine) }
        head.method = method(bytes, methodStart..<i)
        if head.method == .connect { return .failure(.connect) }
        i += 1
        // request-target SP
        let targetStart = i
        while i < bytes.count, bytes[i] > 32, bytes[i] != 127 { i += 1 }
        guard i > targetStart, i < bytes.count, bytes[i] == 32 else { return .failure(.startLine) }
        i += 1
        // HTTP-version CRLF
        guard let minor = version(bytes, at: i) else {
            return .failure(i + 5 <= bytes.count && matches(bytes, i, "HTTP/") ? .version : .startLine)
        }
        head.minorVersion = minor
        head.versionRange = i..<(i + 8)
        i += 8
        guard i + 1 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10 else { return .failure(.startLine) }
        head.startLineEnd = i + 2
        return parseFields(bytes, into: &head, isRequest: true).map { head }
    }

    /// Parses a complete response head to a request with `requestMethod` (a HEAD request's response
    /// has no body, whatever its fields say).
    public static func parseResponse(_ bytes: UnsafeRawBufferPointer, requestMethod: HTTP1Method) -> Result<HTTP1Head, HTTP1ParseError> {
        var head = HTTP1Head()
        head.length = bytes.count
        head.method = requestMethod
        guard let minor = version(bytes, at: 0) else {
            return .failure(bytes.count >= 5 && matches(bytes, 0, "HTTP/") ? .version : .startLine)
        }
        head.minorVersion = minor
        head.versionRange = 0..<8
        var i = 8
        guard i + 4 <= bytes.count, bytes[i] == 32,
              isDigit(bytes[i + 1]), isDigit(bytes[i + 2]), isDigit(bytes[i + 3]) else { return .failure(.startLine) }
        head.status = Int(bytes[i + 1] - 48) * 100 + Int(bytes[i + 2] - 48) * 10 + Int(bytes[i + 3] - 48)
        guard head.status >= 100 else { return .failure(.startLine) }
        i += 4
        // [SP reason-phrase] CRLF (some servers send no space when the phrase is empty)
        if i < bytes.count, bytes[i] == 32 {
            i += 1
            while i < bytes.count, bytes[i] != 13 {
                guard isFieldValueByte(bytes[i]) else { return .failure(.startLine) }
                i += 1
            }
        }
        guard i + 1 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10 else { return .failure(.startLine) }
        head.startLineEnd = i + 2
        return parseFields(bytes, into: &head, isRequest: false).map { head }
    }

    /// The field lines of a head to forward: all but the hop-by-hop ones, those the `Connection` field
    /// names, and a Content-Length beside chunked coding. Transfer-Encoding stays (the body is
    /// forwarded as it arrived, in its coding) unless `droppingTransferEncoding` (a chunked body
    /// forwarded decoded). `Upgrade` stays when `keepingUpgrade` (a protocol switch passed on; the
    /// `Connection` field still goes, the caller writes its own). Each range ends with its line's CRLF.
    public static func keptFieldLines(_ bytes: UnsafeRawBufferPointer, _ head: HTTP1Head,
                                      droppingTransferEncoding: Bool = false, keepingUpgrade: Bool = false) -> [Range<Int>] {
        var named: [[UInt8]] = []
        var lines: [(range: Range<Int>, name: Range<Int>, drop: Bool, framing: Bool)] = []
        forEachField(bytes, from: head.startLineEnd, to: head.length) { line, name, value in
            let kind = FieldKind(bytes, name)
            var drop = kind == .hopByHop || (kind == .upgrade && !keepingUpgrade)
                || (kind == .contentLength && head.framing == .chunked)
                || (kind == .transferEncoding && droppingTransferEncoding)
            if kind == .connection {
                forEachToken(bytes, value) { token in
                    if !equalsLowercase(bytes, token, "close"), !equalsLowercase(bytes, token, "keep-alive"),
                       !keepingUpgrade || !equalsLowercase(bytes, token, "upgrade") {
                        named.append(bytes[token].map { $0 | (isUpper($0) ? 0x20 : 0) })
                    }
                }
                drop = true
            }
            // A field that frames the body stays even when `Connection` names it: dropping it would
            // make the next hop frame the message differently from this one (request smuggling).
            lines.append((line, name, drop, kind == .contentLength || kind == .transferEncoding))
        }
        return lines.compactMap { line in
            if line.drop { return nil }
            if line.framing { return line.range }
            let name = bytes[line.name].map { $0 | (isUpper($0) ? 0x20 : 0) }
            return named.contains(name) ? nil : line.range
        }
    }

    // MARK: - Fields

    private enum FieldKind: Equatable {
        case contentLength, transferEncoding, connection, expect, upgrade, hopByHop, other

        init(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) {
            switch name.count {
            case 2 where equalsLowercase(bytes, name, "te"): self = .hopByHop
            case 6 where equalsLowercase(bytes, name, "expect"): self = .expect
            case 7 where equalsLowercase(bytes, name, "trailer"): self = .hopByHop
            case 7 where equalsLowercase(bytes, name, "upgrade"): self = .upgrade
            case 10 where equalsLowercase(bytes, name, "connection"): self = .connection
            case 10 where equalsLowercase(bytes, name, "keep-alive"): self = .hopByHop
            case 14 where equalsLowercase(bytes, name, "content-length"): self = .contentLength
            case 16 where equalsLowercase(bytes, name, "proxy-connection"): self = .hopByHop
            case 17 where equalsLowercase(bytes, name, "transfer-encoding"): self = .transferEncoding
            case 18 where equalsLowercase(bytes, name, "proxy-authenticate"): self = .hopByHop
            case 19 where equalsLowercase(bytes, name, "proxy-authorization"): self = .hopByHop
            default: self = .other
            }
        }
    }

    /// Validates the field lines after the start line and sets framing, keep-alive and the hop-by-hop flag.
    private static func parseFields(_ bytes: UnsafeRawBufferPointer, into head: inout HTTP1Head, isRequest: Bool) -> Result<Void, HTTP1ParseError> {
        var contentLength: Int?
        var chunked = false
        var hasTransferEncoding = false
        var close = false
        var keepAliveToken = false
        var upgradeField = false
        var upgradeToken = false
        var failure: HTTP1ParseError?
        var invalidValue: HTTP1ParseError?
        let valid = forEachFieldValidating(bytes, from: head.startLineEnd, to: head.length, failure: &failure) { _, name, value in
            switch FieldKind(bytes, name) {
            case .contentLength:
                guard let n = decimal(bytes, value), contentLength == nil || contentLength == n else {
                    invalidValue = .contentLength
                    return false
                }
                contentLength = n
            case .transferEncoding:
                hasTransferEncoding = true
                // The last coding decides; a later field line continues the list.
                var last: Range<Int>?
                forEachToken(bytes, value) { last = $0 }
                if let last { chunked = equalsLowercase(bytes, last, "chunked") }
            case .connection:
                head.hasConnectionField = true
                forEachToken(bytes, value) { token in
                    if equalsLowercase(bytes, token, "keep-alive") {
                        keepAliveToken = true
                    } else {
                        if equalsLowercase(bytes, token, "close") {
                            close = true
                        } else if equalsLowercase(bytes, token, "upgrade") {
                            upgradeToken = true
                        }
                        head.hasHopByHopFields = true
                    }
                }
            case .expect:
                if equalsLowercase(bytes, trimmed(bytes, value), "100-continue") { head.expectsContinue = true }
            case .upgrade:
                upgradeField = true
                head.hasHopByHopFields = true
            case .hopByHop:
                head.hasHopByHopFields = true
            case .other:
                break
            }
            return true
        }
        if !valid { return .failure(invalidValue ?? failure ?? .fieldName) }
        head.keepAlive = !close && (head.minorVersion == 1 || keepAliveToken)
        head.upgrade = upgradeField && upgradeToken && head.minorVersion == 1
        if isRequest {
            if hasTransferEncoding {
                guard chunked else { return .failure(.transferEncoding) }
                guard contentLength == nil else { return .failure(.lengthAndChunked) }
                head.framing = .chunked
            } else if let contentLength, contentLength > 0 {
                head.framing = .length(contentLength)
            }
        } else if head.method == .head || head.status < 200 || head.status == 204 || head.status == 304 {
            head.framing = .none
        } else if hasTransferEncoding {
            // RFC 9112 §6.3: chunked wins over a Content-Length (dropped when forwarded); any other
            // final coding is read until the connection closes.
            if chunked {
                head.framing = .chunked
                if contentLength != nil { head.hasHopByHopFields = true }
            } else {
                head.framing = .untilClose
                head.keepAlive = false
            }
        } else if let contentLength {
            head.framing = contentLength > 0 ? .length(contentLength) : .none
        } else {
            head.framing = .untilClose
            head.keepAlive = false
        }
        return .success(())
    }

    /// Calls `body` with each field line (with its CRLF), name and value (without surrounding
    /// whitespace) of a head already validated.
    private static func forEachField(_ bytes: UnsafeRawBufferPointer, from: Int, to end: Int,
                                     _ body: (Range<Int>, Range<Int>, Range<Int>) -> Void) {
        var failure: HTTP1ParseError?
        _ = forEachFieldValidating(bytes, from: from, to: end, failure: &failure) { line, name, value in
            body(line, name, value)
            return true
        }
    }

    /// Validates each field line from `from` to the empty line that ends at `end`, calling `body`
    /// with its line, name and trimmed value; stops (false) at the first invalid line or when `body`
    /// returns false.
    private static func forEachFieldValidating(
        _ bytes: UnsafeRawBufferPointer, from: Int, to end: Int, failure: inout HTTP1ParseError?,
        _ body: (Range<Int>, Range<Int>, Range<Int>) -> Bool
    ) -> Bool {
        var i = from
        while i < end {
            let lineStart = i
            if bytes[i] == 13 {
                // The empty line: it must be the last two bytes.
                guard i + 2 == end, bytes[i + 1] == 10 else {
                    failure = .lineEnd
                    return false
                }
                return true
            }
            if bytes[i] == 32 || bytes[i] == 9 {
                failure = .folding
                return false
            }
            while i < end, isTokenByte(bytes[i]) { i += 1 }
            guard i > lineStart, i < end, bytes[i] == 58 else {
                failure = .fieldName
                return false
            }
            let name = lineStart..<i
            i += 1
            while i < end, bytes[i] == 32 || bytes[i] == 9 { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < end, bytes[i] != 13 {
                let b = bytes[i]
                guard isFieldValueByte(b) else {
                    failure = b == 10 ? .lineEnd : .fieldValue
                    return false
                }
                if b != 32, b != 9 { valueEnd = i + 1 }
                i += 1
            }
            guard i + 1 < end, bytes[i + 1] == 10 else {
                failure = .lineEnd
                return false
            }
            i += 2
            guard body(lineStart..<i, name, valueStart..<valueEnd) else { return false }
        }
        failure = .lineEnd
        return false
    }

    /// Calls `body` with each non-empty comma-separated element of `value`, trimmed.
    private static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = value.lowerBound
        var i = start
        while i <= value.upperBound {
            if i == value.upperBound || bytes[i] == 44 {
                let token = trimmed(bytes, start..<i)
                if !token.isEmpty { body(token) }
                start = i + 1
            }
            i += 1
        }
    }

    // MARK: - Bytes

    private static func trimmed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, bytes[lower] == 32 || bytes[lower] == 9 { lower += 1 }
        while upper > lower, bytes[upper - 1] == 32 || bytes[upper - 1] == 9 { upper -= 1 }
        return lower..<upper
    }

    /// `HTTP/1.0` or `HTTP/1.1` at `i`: the minor version.
    private static func version(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Int? {
        guard i + 8 <= bytes.count, matches(bytes, i, "HTTP/1."), bytes[i + 7] == 48 || bytes[i + 7] == 49 else { return nil }
        return Int(bytes[i + 7] - 48)
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ i: Int, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        let p = literal.utf8Start
        for k in 0..<n where bytes[i + k] != p[k] { return false }
        return true
    }

    /// Case-insensitive comparison of `bytes[range]` with a lowercase ASCII literal.
    static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard range.count == n else { return false }
        let p = literal.utf8Start
        var k = 0
        for i in range {
            let b = bytes[i]
            if b != p[k], b | 0x20 != p[k] || !isUpper(b) { return false }
            k += 1
        }
        return true
    }

    private static func method(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTP1Method {
        // Methods are case-sensitive (RFC 9110 §9.1).
        switch range.count {
        case 3 where matches(bytes, range.lowerBound, "GET"): .get
        case 3 where matches(bytes, range.lowerBound, "PUT"): .put
        case 4 where matches(bytes, range.lowerBound, "HEAD"): .head
        case 4 where matches(bytes, range.lowerBound, "POST"): .post
        case 5 where matches(bytes, range.lowerBound, "TRACE"): .trace
        case 5 where matches(bytes, range.lowerBound, "PATCH"): .patch
        case 6 where matches(bytes, range.lowerBound, "DELETE"): .delete
        case 7 where matches(bytes, range.lowerBound, "OPTIONS"): .options
        case 7 where matches(bytes, range.lowerBound, "CONNECT"): .connect
        default: .other
        }
    }

    /// A non-negative decimal of at most 18 digits.
    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var n = 0
        for i in range {
            guard isDigit(bytes[i]) else { return nil }
            n = n * 10 + Int(bytes[i] - 48)
        }
        return n
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 48 < 10 }
    @inline(__always) static func isUpper(_ b: UInt8) -> Bool { b &- 65 < 26 }

    /// tchar (RFC 9110 §5.6.2).
    @inline(__always) static func isTokenByte(_ b: UInt8) -> Bool {
        tokenTable[Int(b)]
    }

    /// field-vchar, SP or HTAB (obs-text allowed).
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool {
        b >= 32 ? b != 127 : b == 9
    }

    private static let tokenTable: [Bool] = (0..<256).map { b in
        switch UInt8(b) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(UInt8(b))
        }
    }
}
