#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftCore

/// Settings of a node's DNS server.
public struct DNSServerConfiguration: Sendable {
    /// Address for both UDP and TCP; port 0 picks a free port (the same one for both).
    public var host: String
    public var port: Int
    /// Where names outside the cluster zone go; empty: they are REFUSED.
    public var upstreams: [DNSUpstream]
    /// How long one upstream gets before the next is tried.
    public var upstreamTimeout: TimeAmount
    /// A TCP connection without a query for this long is closed.
    public var tcpIdleTimeout: TimeAmount
    /// TCP connections beyond this many are closed at once.
    public var maximumTCPConnections: Int

    public init(host: String = "127.0.0.1", port: Int = 1053, upstreams: [DNSUpstream] = [], upstreamTimeout: TimeAmount = .seconds(2),
                tcpIdleTimeout: TimeAmount = .seconds(10), maximumTCPConnections: Int = 512) {
        self.host = host
        self.port = port
        self.upstreams = upstreams
        self.upstreamTimeout = upstreamTimeout
        self.tcpIdleTimeout = tcpIdleTimeout
        self.maximumTCPConnections = maximumTCPConnections
    }
}

/// What every channel of one DNS server shares: the current zone (swapped whole on each change), the
/// forwarder, and the TCP connection count.
final class DNSServerState: Sendable {
    private let zoneBox: NIOLockedValueBox<ClusterZone>
    let forwarder: DNSForwarder?
    let maximumTCPConnections: Int
    let tcpIdleTimeout: TimeAmount
    private let tcpConnections = NIOLockedValueBox(0)

    init(zone: ClusterZone, forwarder: DNSForwarder?, maximumTCPConnections: Int, tcpIdleTimeout: TimeAmount) {
        zoneBox = NIOLockedValueBox(zone)
        self.forwarder = forwarder
        self.maximumTCPConnections = maximumTCPConnections
        self.tcpIdleTimeout = tcpIdleTimeout
    }

    var zone: ClusterZone {
        get { zoneBox.withLockedValue { $0 } }
        set { zoneBox.withLockedValue { $0 = newValue } }
    }

    /// Counts a new TCP connection; false when there are already as many as allowed.
    func openTCPConnection() -> Bool {
        tcpConnections.withLockedValue { count in
            guard count < maximumTCPConnections else { return false }
            count += 1
            return true
        }
    }

    func closeTCPConnection() {
        tcpConnections.withLockedValue { $0 -= 1 }
    }
}

/// A DNS server on UDP and TCP: the cluster zone from `update(zone:)`, everything else through the
/// forwarder. One UDP socket per event loop (SO_REUSEPORT), so queries spread over every core.
public final class DNSServer: Sendable {
    /// The bound address (the real port when 0 was asked for).
    public let localAddress: SocketAddress
    private let state: DNSServerState
    private let channels: [any Channel]
    private let logger: Logger

    private init(localAddress: SocketAddress, state: DNSServerState, channels: [any Channel], logger: Logger) {
        self.localAddress = localAddress
        self.state = state
        self.channels = channels
        self.logger = logger
    }

    /// Binds UDP and TCP and starts serving `zone`.
    public static func start(
        configuration: DNSServerConfiguration, zone: ClusterZone, group: any EventLoopGroup, logger: Logger
    ) async throws -> DNSServer {
        var upstreamAddresses: [SocketAddress] = []
        for upstream in configuration.upstreams {
            upstreamAddresses.append(try SocketAddress(ipAddress: upstream.host, port: upstream.port))
        }
        let forwarder = upstreamAddresses.isEmpty ? nil : try await DNSForwarder.start(
            upstreams: upstreamAddresses, on: group.next(), attemptTimeout: configuration.upstreamTimeout, logger: logger)
        let state = DNSServerState(zone: zone, forwarder: forwarder, maximumTCPConnections: configuration.maximumTCPConnections,
                                   tcpIdleTimeout: configuration.tcpIdleTimeout)
        // With port 0 the kernel picks the UDP port; TCP then needs the same one, which may be taken:
        // try a few times.
        var lastError: (any Error)?
        for _ in 0..<(configuration.port == 0 ? 8 : 1) {
            do {
                let channels = try await bind(configuration: configuration, state: state, group: group)
                let address = channels[0].localAddress!
                let server = DNSServer(localAddress: address, state: state, channels: channels, logger: logger)
                logger.info("DNS server listening", metadata: [
                    "address": "\(server.listeningDescription)", "upstreams": "\(configuration.upstreams.map(\.description))",
                    "zone": "\(zone.apex)",
                ])
                return server
            } catch {
                lastError = error
            }
        }
        await forwarder?.close()
        throw DNSServerError.cannotListen(host: configuration.host, port: configuration.port, underlying: lastError!)
    }

    private static func bind(configuration: DNSServerConfiguration, state: DNSServerState, group: any EventLoopGroup) async throws -> [any Channel] {
        var channels: [any Channel] = []
        do {
            var port = configuration.port
            for loop in group.makeIterator() {
                let channel = try await DatagramBootstrap(group: loop)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                    .channelOption(.datagramVectorReadMessageCount, value: 16)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(DNSUDPHandler(state: state))
                        }
                    }
                    .bind(host: configuration.host, port: port).get()
                channels.append(channel)
                port = channel.localAddress?.port ?? port
            }
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard state.openTCPConnection() else {
                            throw DNSServerError.tooManyConnections
                        }
                        channel.closeFuture.whenComplete { _ in state.closeTCPConnection() }
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: state.tcpIdleTimeout))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(DNSTCPHandler(state: state))
                    }
                }
                .bind(host: configuration.host, port: port).get()
            channels.append(tcp)
            return channels
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
    }

    /// `host:port` (`[host]:port` for IPv6) of `localAddress`.
    public var listeningDescription: String {
        let host = localAddress.ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(localAddress.port ?? 0)" : "\(host):\(localAddress.port ?? 0)"
    }

    /// Serves `zone` from now on.
    public func update(zone: ClusterZone) {
        state.zone = zone
    }

    /// Stops listening and closes the forwarder's sockets.
    public func shutdown() async {
        for channel in channels {
            try? await channel.close()
        }
        await state.forwarder?.close()
    }
}

public enum DNSServerError: Error, CustomStringConvertible {
    case cannotListen(host: String, port: Int, underlying: any Error)
    case tooManyConnections

    public var description: String {
        switch self {
        case .cannotListen(let host, let port, let error):
            let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return "cannot serve DNS on \(address) (UDP and TCP): \(error); choose another address with --dns-listen"
                + (port < 1024 ? " (ports below 1024 need root)" : "")
        case .tooManyConnections:
            return "too many DNS-over-TCP connections"
        }
    }
}
