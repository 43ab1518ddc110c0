import NIOCore
import NIOHTTP1

/// A response the proxy gives itself instead of a backend's. It carries a one-line text body and an
/// `x-weft-proxy` header naming the reason, so a client (or an operator reading its logs) can tell
/// the proxy's answers from the backend's.
enum HTTPProxyAnswer: Sendable, Equatable {
    /// 400: the request could not be parsed (why); the connection is closed.
    case malformedRequest(String)
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
        case .malformedRequest(let reason):
            "weft proxy: the request is not valid HTTP/1.1 (\(reason)); the connection is closed\n"
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

extension HTTPProxyAnswer {
    /// The whole response, for a client speaking HTTP/1.`minorVersion`.
    func response(listener: String, minorVersion: Int, close: Bool) -> ByteBuffer {
        let body = message(listener: listener)
        var text = "HTTP/1.\(minorVersion) \(status.code) \(status.reasonPhrase)\r\n"
        text += "content-type: text/plain; charset=utf-8\r\ncontent-length: \(body.utf8.count)\r\n"
        text += "x-weft-proxy: \(code)\r\n"
        if close { text += "connection: close\r\n" }
        text += "\r\n"
        text += body
        return ByteBuffer(string: text)
    }
}
