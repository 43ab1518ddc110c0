import NIOCore
import NIOHTTP1

/// A response the proxy gives itself instead of a backend's. It carries a one-line text body and an
/// `x-weft-proxy` header naming the reason, so a client (or an operator reading its logs) can tell
/// the proxy's answers from the backend's.
enum HTTPProxyAnswer: Sendable, Equatable {
    /// 400: the request could not be parsed; the connection is closed.
    case malformedRequest
    /// 503: the listener has no backend (none configured, or all removed).
    case noBackend
    /// 502: every attempt failed (connect failure, connection closed or reset before a response),
    /// and no retry was left or allowed.
    case upstreamFailed
    /// 504: no response head within `http.timeoutMs`.
    case timeout
    /// 403: the destination node's authorization refused the caller (AuthorizationPolicy or STRICT
    /// mode). Not retried: any other endpoint of the service would refuse it too.
    case denied(reason: String)

    var status: HTTPResponseStatus {
        switch self {
        case .malformedRequest: .badRequest
        case .noBackend: .serviceUnavailable
        case .upstreamFailed: .badGateway
        case .timeout: .gatewayTimeout
        case .denied: .forbidden
        }
    }

    /// The `x-weft-proxy` header value.
    var code: String {
        switch self {
        case .malformedRequest: "malformed-request"
        case .noBackend: "no-backend"
        case .upstreamFailed: "upstream-failed"
        case .timeout: "timeout"
        case .denied: "denied"
        }
    }

    func message(listener: String) -> String {
        switch self {
        case .malformedRequest:
            "weft proxy: the request is not valid HTTP/1.1; the connection is closed\n"
        case .noBackend:
            "weft proxy: listener \(listener) has no backend to send this request to\n"
        case .upstreamFailed:
            "weft proxy: listener \(listener): no backend answered (connect failed, or the connection closed before a response)\n"
        case .timeout:
            "weft proxy: listener \(listener): the backend sent no response within the request timeout\n"
        case .denied(let reason):
            "weft proxy: listener \(listener): the destination refused this caller: \(reason)\n"
        }
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection and are not forwarded; neither are
/// headers named in `Connection`. The proxy frames each message itself (`Transfer-Encoding` and
/// keep-alive are set per side).
enum HopByHop {
    static let names: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Removes the hop-by-hop headers from `headers`. Returns whether the message was chunked.
    @discardableResult
    static func strip(_ headers: inout HTTPHeaders) -> (chunked: Bool, removedAny: Bool) {
        var chunked = false
        var named: [String] = []
        var present = false
        for (name, value) in headers {
            if name.utf8.count < 2 || name.utf8.count > 19 { continue }
            if name.caseInsensitiveEquals("transfer-encoding") {
                present = true
                if value.lowercased().contains("chunked") { chunked = true }
            } else if name.caseInsensitiveEquals("connection") {
                present = true
                for token in value.split(separator: ",") {
                    let t = token.trimmingSpaces().lowercased()
                    if !t.isEmpty, t != "close", t != "keep-alive" { named.append(t) }
                }
            } else if !present, names.contains(where: { name.caseInsensitiveEquals($0) }) {
                present = true
            }
        }
        guard present || !named.isEmpty else { return (false, false) }
        for name in names { headers.remove(name: name) }
        for name in named { headers.remove(name: name) }
        return (chunked, true)
    }
}

extension String {
    fileprivate func caseInsensitiveEquals(_ lowercase: String) -> Bool {
        let a = utf8, b = lowercase.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y && (x | 0x20) != y { return false }
        return true
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
