import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import WeftPKI

/// A node's inbound tunnel port: mutual TLS 1.3 from other nodes' proxies (HTTP/2 CONNECT, many
/// streams per connection) and from single workloads or tools holding an SVID (HTTP/1.1 CONNECT).
///
/// Every connection must present a certificate that chains to the trust bundle, is within its
/// validity, and carries a node or workload SPIFFE ID of the node's own trust domain; anything else
/// fails the handshake or is closed right after it. Each stream's destination and source identity are
/// put to the `authorize` closure; an allowed stream is connected to the local replica and spliced.
public final class TunnelInbound: Sendable {
    public struct Counters: Sendable, Equatable {
        public var connections = 0
        public var handshakeFailures = 0
        public var streams = 0
        public var denied = 0
        public var failed = 0
    }

    private let channel: any Channel
    let stats: Stats

    /// The address the inbound port is bound to.
    public var localAddress: SocketAddress? { channel.localAddress }

    public func counters() -> Counters { stats.snapshot() }

    private init(channel: any Channel, stats: Stats) {
        self.channel = channel
        self.stats = stats
    }

    /// Binds `host:port` (port 0 picks one) and serves until `shutdown`.
    public static func start(host: String, port: Int, group: any EventLoopGroup, tls: MeshTLS,
                             authorize: @escaping TunnelAuthorizer, logger: Logger) async throws -> TunnelInbound {
        try await start(host: host, port: port, group: group, tls: tls, authorize: authorize,
                        streams: TunnelProtocol.streamConfiguration, logger: logger)
    }

    /// `start` with the HTTP/2 stream settings given (tests lower the reset limit).
    static func start(host: String, port: Int, group: any EventLoopGroup, tls: MeshTLS, authorize: @escaping TunnelAuthorizer,
                      streams: NIOHTTP2Handler.StreamConfiguration, logger: Logger) async throws -> TunnelInbound {
        let stats = Stats()
        let service = InboundService(tls: tls, authorize: authorize, stats: stats, logger: logger)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    stats.connections.add(1, ordering: .relaxed)
                    guard let contexts = tls.contexts else {
                        // No certificate yet: nothing to present.
                        stats.handshakeFailures.add(1, ordering: .relaxed)
                        channel.close(promise: nil)
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: contexts.server))
                    try channel.pipeline.syncOperations.addHandler(
                        TunnelServerHandshake(service: service, trustDomain: contexts.identity.trustDomain, streams: streams))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("tunnel inbound listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return TunnelInbound(channel: channel, stats: stats)
    }

    /// Stops accepting; open tunnel connections end with their peers.
    public func shutdown() async {
        try? await channel.close()
    }
}

extension TunnelInbound {
    final class Stats: Sendable {
        let connections = Atomic<Int>(0)
        let handshakeFailures = Atomic<Int>(0)
        let streams = Atomic<Int>(0)
        let denied = Atomic<Int>(0)
        let failed = Atomic<Int>(0)

        func snapshot() -> Counters {
            Counters(connections: connections.load(ordering: .relaxed), handshakeFailures: handshakeFailures.load(ordering: .relaxed),
                     streams: streams.load(ordering: .relaxed), denied: denied.load(ordering: .relaxed),
                     failed: failed.load(ordering: .relaxed))
        }
    }
}

/// What every inbound stream handler shares: authorization, the local connect, counters and a log
/// of refusals that cannot flood (at most `logBurst` lines per second).
struct InboundService: Sendable {
    let tls: MeshTLS
    let authorize: TunnelAuthorizer
    let stats: TunnelInbound.Stats
    let logger: Logger
    private let logWindow = LogWindow()

    static let connectTimeout = TimeAmount.seconds(1)

    init(tls: MeshTLS, authorize: @escaping TunnelAuthorizer, stats: TunnelInbound.Stats, logger: Logger) {
        self.tls = tls
        self.authorize = authorize
        self.stats = stats
        self.logger = logger
    }

    /// The verdict for a stream and its HTTP status (200 allowed).
    func decide(destination: String, peer: SPIFFEID, source: SPIFFEID?) -> (status: Int, reason: String?) {
        guard Self.address(destination) != nil else {
            return (400, "the CONNECT authority \"\(destination.prefix(200))\" is not an IP:port")
        }
        switch authorize(TunnelRequest(destination: destination, peer: peer, source: source)) {
        case .allow:
            stats.streams.add(1, ordering: .relaxed)
            return (200, nil)
        case .deny(let reason):
            stats.denied.add(1, ordering: .relaxed)
            if logWindow.admit() {
                logger.warning("tunnel stream denied", metadata: [
                    "peer": "\(peer)", "source": "\(source.map { "\($0)" } ?? "none (outside the mesh)")",
                    "destination": "\(destination)", "reason": "\(reason)",
                ])
            }
            return (403, reason)
        case .unknownDestination(let reason):
            stats.failed.add(1, ordering: .relaxed)
            return (404, reason)
        }
    }

    /// The source workload of a stream: the peer itself when it is a workload; for a node, the
    /// workload it names in `weft-source` (which must be a workload of the same trust domain), or nil.
    static func source(peer: SPIFFEID, claimed: String?) -> Result<SPIFFEID?, TunnelRefusal> {
        if peer.workload != nil { return .success(peer) }
        guard let claimed else { return .success(nil) }
        guard let id = try? SPIFFEID(parsing: claimed), id.trustDomain == peer.trustDomain, id.workload != nil else {
            return .failure(TunnelRefusal(status: 400, reason: "\(TunnelProtocol.sourceHeader) \"\(claimed.prefix(200))\" is not a workload SPIFFE ID of trust domain \(peer.trustDomain)"))
        }
        return .success(id)
    }

    static func address(_ authority: String) -> SocketAddress? {
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(authority[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return try? SocketAddress(ipAddress: host, port: port)
    }

    /// A TCP connection to the local replica on `loop`, half-closable.
    func connect(_ address: SocketAddress, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: address)
    }

    func connectFailed() { stats.failed.add(1, ordering: .relaxed) }

    /// What both CONNECT flavours do with a request: the source (the peer, or the workload it vouches
    /// for in `claimed`), the verdict, then the connection to the local replica. Fails with the
    /// `TunnelRefusal` to answer: 400, 403, 404, or 502 when the replica does not accept.
    func open(destination: String, peer: SPIFFEID, claimed: String?, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let source: SPIFFEID?
        switch Self.source(peer: peer, claimed: claimed) {
        case .success(let id): source = id
        case .failure(let refusal): return loop.makeFailedFuture(refusal)
        }
        let (status, reason) = decide(destination: destination, peer: peer, source: source)
        guard status == 200, let address = Self.address(destination) else {
            return loop.makeFailedFuture(TunnelRefusal(status: status, reason: reason ?? "refused"))
        }
        return connect(address, on: loop).flatMapErrorThrowing { error in
            self.connectFailed()
            throw TunnelRefusal(status: 502, reason: "the replica at \(destination) did not accept: \(error)")
        }
    }
}

/// At most `burst` admissions per second.
final class LogWindow: Sendable {
    private let state = Mutex<(second: Int64, count: Int)>((0, 0))
    static let burst = 20

    func admit() -> Bool {
        let second = Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000_000)
        return state.withLock { s in
            if s.second != second { s = (second, 0) }
            s.count += 1
            return s.count <= Self.burst
        }
    }
}

/// Checks the peer once the TLS handshake completes and sets up the protocol it negotiated.
final class TunnelServerHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let service: InboundService
    private let trustDomain: String
    private let streams: NIOHTTP2Handler.StreamConfiguration

    init(service: InboundService, trustDomain: String, streams: NIOHTTP2Handler.StreamConfiguration) {
        self.service = service
        self.trustDomain = trustDomain
        self.streams = streams
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        do {
            let handler = try context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            guard let certificate = handler.peerCertificate, let peer = try PeerIdentity.spiffeID(of: certificate),
                  peer.trustDomain == trustDomain, peer.nodeName != nil || peer.workload != nil
            else {
                throw TunnelPeerError(reason: "the peer's certificate carries no node or workload SPIFFE ID of trust domain \(trustDomain)")
            }
            if negotiated == "h2" {
                let service = self.service
                try context.pipeline.syncOperations.addHandler(FlushCoalescer())
                _ = try context.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .server,
                    connectionConfiguration: TunnelProtocol.connectionConfiguration(maxConcurrentStreams: 1000),
                    streamConfiguration: streams,
                    inboundStreamInitializer: { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(TunnelConnectServer(service: service, peer: peer))
                        }
                    })
            } else {
                try context.pipeline.syncOperations.addHandler(HTTP1ConnectServer(service: service, peer: peer))
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            service.stats.handshakeFailures.add(1, ordering: .relaxed)
            service.logger.info("tunnel peer refused", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A failed handshake (no certificate, unknown CA, expired) ends here.
        service.stats.handshakeFailures.add(1, ordering: .relaxed)
        service.logger.debug("tunnel handshake failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TunnelServerHandshake: Sendable {}
