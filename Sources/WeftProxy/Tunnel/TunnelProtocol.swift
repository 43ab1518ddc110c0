import NIOCore
import NIOHPACK
import NIOHTTP2
import WeftPKI

/// The tunnel's wire conventions, shared by both ends. A stream is an HTTP/2 CONNECT (RFC 9113 §8.5)
/// whose `:authority` is the destination replica's `ip:port`, as ztunnel's HBONE does; the source
/// workload's SPIFFE ID rides in `weft-source`, vouched for by the sending node's certificate. The
/// destination answers `200` and the stream carries the bytes, or an error status with the reason in
/// `weft-reason`.
enum TunnelProtocol {
    static let sourceHeader = "weft-source"
    static let reasonHeader = "weft-reason"

    static func connectRequest(authority: String, source: String?) -> HPACKHeaders {
        var headers: HPACKHeaders = [":method": "CONNECT", ":authority": authority]
        if let source { headers.add(name: sourceHeader, value: source) }
        return headers
    }

    static func response(status: Int, reason: String? = nil) -> HPACKHeaders {
        var headers: HPACKHeaders = [":status": String(status)]
        if let reason { headers.add(name: reasonHeader, value: String(reason.prefix(512))) }
        return headers
    }

    /// HTTP/2 settings of tunnel connections: many streams per connection, and windows and frames large
    /// enough that a stream's throughput is not bound by WINDOW_UPDATE round trips.
    static let windowSize = 4 << 20
    /// The connection-level window (swift-nio-http2's default is HTTP/2's 65,535 bytes, which would cap
    /// all streams of a connection together).
    static let connectionWindowSize = 16 << 20
    static let maxFrameSize = 1 << 20

    static func connectionConfiguration(maxConcurrentStreams: Int) -> NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
        ]
        configuration.targetWindowSize = connectionWindowSize
        // Resets between authenticated nodes are not an attack (see resetRateLimit); nor are the
        // "glitches" they count as.
        configuration.maximumConnectionGlitches = resetRateLimit.maximumCount
        return configuration
    }

    /// How many RST_STREAM frames (and stream errors) a peer may send per window before the connection
    /// is closed with GOAWAY. A node's proxy resets a stream whenever its client hangs up before the
    /// stream's END_STREAM, which HTTP clients that close after reading the response do on every
    /// request: resets follow the services' request rate. NIO's default (200 per 30 s, a rapid-reset
    /// guard for untrusted clients) closed busy tunnels between authenticated nodes within seconds.
    static let resetRateLimit: NIOHTTP2Handler.StreamResetFrameRateLimitConfiguration = {
        var limit = NIOHTTP2Handler.StreamResetFrameRateLimitConfiguration()
        limit.maximumCount = 1_000_000
        limit.windowLength = .seconds(10)
        return limit
    }()

    static var streamConfiguration: NIOHTTP2Handler.StreamConfiguration {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = windowSize
        configuration.outboundBufferSizeHighWatermark = 1 << 20
        configuration.outboundBufferSizeLowWatermark = 256 << 10
        configuration.streamResetFrameRateLimit = resetRateLimit
        configuration.streamErrorRateLimit.maximumCount = resetRateLimit.maximumCount
        configuration.streamErrorRateLimit.windowLength = resetRateLimit.windowLength
        return configuration
    }
}

/// A destination node refused a tunnelled stream (`status` is its HTTP status: 403 denied by
/// policy, 404 no such endpoint there, 502 the replica did not accept), or the stream broke before
/// an answer (`status` 0).
public struct TunnelRefusal: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String

    /// Denied by authorization: another endpoint would be denied too, so the client is not retried.
    public var isDenied: Bool { status == 403 }

    public var description: String {
        status == 0 ? "tunnel stream failed: \(reason)" : "tunnel refused the stream (\(status)): \(reason)"
    }
}

/// A tunnel connection refused to open a stream because it is going away (GOAWAY sent or received);
/// the pool retires the connection, and the next stream goes to a new one.
struct TunnelConnectionClosing: Error, Sendable, CustomStringConvertible {
    var reason: String
    var description: String { "the tunnel connection takes no new stream: \(reason)" }
}

/// A tunnel connection that cannot be used: the peer is not the node it should be, or speaks no HTTP/2.
public struct TunnelPeerError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// What the destination node decides about one tunnelled stream.
public struct TunnelRequest: Sendable {
    /// The `ip:port` asked for.
    public var destination: String
    /// The identity in the peer's certificate: a node (relaying for `source`) or a workload.
    public var peer: SPIFFEID
    /// The workload the stream comes from; nil when it does not come from a mesh workload.
    public var source: SPIFFEID?
}

public enum TunnelVerdict: Sendable, Equatable {
    case allow
    /// Refused by authorization policy, with the reason (logged and counted).
    case deny(String)
    /// The destination is not a replica endpoint of this node.
    case unknownDestination(String)
}

public typealias TunnelAuthorizer = @Sendable (TunnelRequest) -> TunnelVerdict
