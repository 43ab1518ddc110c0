import NIOCore
import NIOHPACK
import NIOHTTP2

/// Header blocks of HTTP/2 streams as they pass the proxy, and the proxy's own answers on a stream.
enum H2Forwarding {
    /// Connection-specific fields (RFC 9113 §8.2.2): never forwarded. `te` passes only as `trailers`.
    static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// `headers` without connection-specific fields; the same value (no copy) in the usual case of none.
    /// Pseudo-header fields (`:authority`, `:path`, `:method`, `:scheme`, `:status`) pass unchanged.
    static func forward(_ headers: HPACKHeaders) -> HPACKHeaders {
        guard headers.contains(where: { isConnectionSpecific($0.name, $0.value) }) else { return headers }
        var kept = HPACKHeaders()
        kept.reserveCapacity(headers.count)
        for (name, value, indexing) in headers where !isConnectionSpecific(name, value) {
            kept.add(name: name, value: value, indexing: indexing)
        }
        return kept
    }

    private static func isConnectionSpecific(_ name: String, _ value: String) -> Bool {
        connectionSpecific.contains(name) || (name == "te" && value.lowercased() != "trailers")
    }

    /// Whether a request's headers make it a gRPC call (`content-type: application/grpc` or `application/grpc+…`).
    static func isGRPC(_ headers: HPACKHeaders) -> Bool {
        guard let type = headers.first(name: "content-type") else { return false }
        return type.hasPrefix("application/grpc")
    }

    /// The gRPC status code for a proxy answer: 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED, 7 PERMISSION_DENIED.
    static func grpcStatus(_ answer: HTTPProxyAnswer) -> Int {
        switch answer {
        case .timeout: 4
        case .denied: 7
        case .malformedRequest: 13
        case .noBackend, .upstreamFailed: 14
        }
    }

    /// The frames of the proxy's answer on a stream. A plain request gets the answer's status with
    /// `x-weft-proxy` and a one-line text body. A gRPC call gets a trailers-only response (one HEADERS
    /// frame ending the stream) with `:status` 200, as gRPC requires for its status to be read, and
    /// `grpc-status`/`grpc-message`; `x-weft-proxy` names the reason there too.
    static func answer(_ answer: HTTPProxyAnswer, listener: String, grpc: Bool) -> [HTTP2Frame.FramePayload] {
        let message = answer.message(listener: listener)
        if grpc {
            let headers = HPACKHeaders([
                (":status", "200"), ("content-type", "application/grpc"),
                ("grpc-status", String(grpcStatus(answer))),
                ("grpc-message", percentEncoded(message.trimmingCharacters(in: "\n"))),
                ("x-weft-proxy", answer.code),
            ])
            return [.headers(.init(headers: headers, endStream: true))]
        }
        let headers = HPACKHeaders([
            (":status", String(answer.status.code)), ("content-type", "text/plain; charset=utf-8"),
            ("content-length", String(message.utf8.count)), ("x-weft-proxy", answer.code),
        ])
        return [
            .headers(.init(headers: headers)),
            .data(.init(data: .byteBuffer(ByteBuffer(string: message)), endStream: true)),
        ]
    }

    /// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7e, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.last == set { s = s.dropLast() }
        return String(s)
    }

    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
