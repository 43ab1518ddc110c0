import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization
import WeftPKI

/// Where a tunnelled backend is reached: the destination node's inbound address and the SPIFFE ID
/// its certificate must carry.
struct TunnelEndpoint: Sendable, Hashable {
    var address: SocketAddress
    var identity: SPIFFEID

    var key: String { "\(identity)@\(address)" }
}

/// Opens tunnel streams to other nodes' proxies over pooled mTLS HTTP/2 connections.
///
/// Each event loop has its own pool, so a stream, its client connection and its tunnel connection share
/// one thread. Per destination node, streams share connections up to `maxStreamsPerConnection` each; a
/// connection with no streams closes after `idleTimeout`. When the node's credentials change
/// (`MeshTLS.generation`), new streams go to new connections and old connections close once their
/// streams are done — open streams are never cut.
public final class TunnelClient: Sendable {
    public struct Settings: Sendable {
        public var maxStreamsPerConnection = 100
        public var idleTimeout = TimeAmount.seconds(60)
        /// A connection whose sent bytes stay unacknowledged this long is dropped by the kernel
        /// (`TCP_USER_TIMEOUT`): a node that vanished from the network (cable pulled, host frozen) fails
        /// the streams in flight to it after this, so L7 requests are retried on other endpoints and new
        /// streams open a new connection, instead of waiting for the request timeout. Idle connections
        /// are not affected (nothing is unacknowledged). 0 leaves the kernel's default (~15 minutes).
        public var unacknowledgedTimeout = TimeAmount.seconds(3)
        public init() {}
    }

    /// `TCP_USER_TIMEOUT` (Linux, `<netinet/tcp.h>`).
    static let tcpUserTimeout: Int32 = 18

    private let tls: MeshTLS
    private let settings: Settings
    private let logger: Logger
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<LoopPool>]>([:])
    private let connectionsOpened = Atomic<Int>(0)
    private let connectionsOpen = Atomic<Int>(0)
    private let streamsOpened = Atomic<Int>(0)

    public init(tls: MeshTLS, settings: Settings = Settings(), logger: Logger) {
        self.tls = tls
        self.settings = settings
        self.logger = logger
    }

    /// Connections opened and streams opened since start.
    public var counters: (connections: Int, streams: Int) {
        (connectionsOpened.load(ordering: .relaxed), streamsOpened.load(ordering: .relaxed))
    }

    /// Tunnel connections open now.
    public var openConnections: Int { connectionsOpen.load(ordering: .relaxed) }

    /// A stream to `authority` (a replica's `ip:port`) through `endpoint`, spliced-ready once the
    /// destination accepted it. Must be called on `loop`.
    ///
    /// A stream that its connection could not carry because the connection was going away — the peer
    /// said GOAWAY, so it never processed the stream, or the stream could not even be opened there — is
    /// opened once more, on a new connection.
    func openStream(to endpoint: TunnelEndpoint, authority: String, source: String?, on loop: any EventLoop,
                    timeout: TimeAmount) -> EventLoopFuture<any Channel> {
        let opened = loop.makePromise(of: (any Channel).self)
        attempt(to: endpoint, authority: authority, source: source, on: loop, timeout: timeout) { error, wentAway in
            guard wentAway else {
                opened.fail(error)
                return
            }
            self.logger.debug("tunnel connection went away before its peer took the stream; opening it on a new one",
                              metadata: ["peer": "\(endpoint.identity)", "error": "\(error)"])
            self.attempt(to: endpoint, authority: authority, source: source, on: loop, timeout: timeout) { error, _ in
                opened.fail(error)
            }.cascadeSuccess(to: opened)
        }.cascadeSuccess(to: opened)
        return opened.futureResult
    }

    /// One try at `openStream`; on failure `failed` gets the error and whether the connection was
    /// going away (then the peer did not take the stream, and it may be sent again elsewhere).
    private func attempt(to endpoint: TunnelEndpoint, authority: String, source: String?, on loop: any EventLoop,
                         timeout: TimeAmount, failed: @escaping (any Error, _ wentAway: Bool) -> Void) -> EventLoopFuture<any Channel> {
        loop.preconditionInEventLoop()
        guard let contexts = tls.contexts else {
            let error = TunnelPeerError(reason: "this node has no mesh certificate yet")
            failed(error, false)
            return loop.makeFailedFuture(error)
        }
        let pool = self.pool(for: loop)
        let connection = pool.connection(to: endpoint, generation: contexts.generation, maxStreams: settings.maxStreamsPerConnection)
            ?? newConnection(to: endpoint, contexts: contexts, pool: pool, loop: loop, timeout: timeout)
        connection.acquire()
        streamsOpened.add(1, ordering: .relaxed)
        let established = loop.makePromise(of: (any Channel).self)
        established.futureResult.assumeIsolated().whenFailure { error in
            if error is TunnelConnectionClosing { pool.retire(connection) }
            // A GOAWAY retires the connection before the streams it drops are failed; a stream refused
            // for that reason got no answer (a refusal with a status was the destination's decision).
            let unanswered = error is TunnelConnectionClosing || (error as? TunnelRefusal)?.status == 0
            failed(error, unanswered && connection.closing && connection.channel?.isActive == true)
        }
        connection.ready.assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                established.fail(error)
                pool.release(connection, settings: self.settings, generation: self.tls.generation)
            case .success(let multiplexer):
                multiplexer.createStreamChannel { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(
                            TunnelConnectClient(authority: authority, source: source, deadline: timeout, established: established))
                    }
                }.assumeIsolated().whenComplete { created in
                    switch created {
                    case .success(let stream):
                        stream.closeFuture.assumeIsolated().whenComplete { _ in
                            pool.release(connection, settings: self.settings, generation: self.tls.generation)
                        }
                    case .failure(let error):
                        established.fail(error)
                        pool.release(connection, settings: self.settings, generation: self.tls.generation)
                    }
                }
            }
        }
        return established.futureResult
    }

    private func pool(for loop: any EventLoop) -> LoopPool {
        let key = ObjectIdentifier(loop)
        if let pool = pools.withLock({ $0[key] }) { return pool.value }
        let pool = LoopPool()
        pools.withLock { $0[key] = NIOLoopBound(pool, eventLoop: loop) }
        return pool
    }

    private func newConnection(to endpoint: TunnelEndpoint, contexts: MeshTLS.Contexts, pool: LoopPool, loop: any EventLoop,
                               timeout: TimeAmount) -> PooledConnection {
        let ready = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
        let maxStreams = settings.maxStreamsPerConnection
        let connection = PooledConnection(endpoint: endpoint, generation: contexts.generation, ready: ready.futureResult)
        pool.add(connection)
        connectionsOpened.add(1, ordering: .relaxed)
        let logger = self.logger
        let goingAway = NIOLoopBound({ [pool, connection] in
            logger.info("tunnel peer takes no more streams on a connection (GOAWAY); new streams go to a new one",
                        metadata: ["peer": "\(endpoint.identity)"])
            pool.retire(connection)
        }, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: Self.tcpUserTimeout)),
                           value: SocketOptionValue(settings.unacknowledgedTimeout.nanoseconds / 1_000_000))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: contexts.client, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(
                        TunnelClientHandshake(expected: endpoint.identity, maxConcurrentStreams: maxStreams, ready: ready,
                                              goingAway: { goingAway.value() }))
                }
            }
            .connect(to: endpoint.address)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    connection.channel = channel
                    self.connectionsOpen.add(1, ordering: .relaxed)
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        self.connectionsOpen.subtract(1, ordering: .relaxed)
                        pool.remove(connection)
                    }
                case .failure(let error):
                    ready.fail(TunnelPeerError(reason: "cannot connect to the tunnel of \(endpoint.identity) at \(endpoint.address): \(error)"))
                    pool.remove(connection)
                }
            }
        ready.futureResult.whenFailure { error in
            logger.warning("tunnel connection failed", metadata: ["peer": "\(endpoint.identity)", "address": "\(endpoint.address)", "error": "\(error)"])
        }
        return connection
    }
}

/// One event loop's tunnel connections, by destination. Used on that loop only.
final class LoopPool {
    private var connections: [String: [PooledConnection]] = [:]

    /// A usable connection to `endpoint` made with the current credentials and below its stream limit.
    func connection(to endpoint: TunnelEndpoint, generation: Int, maxStreams: Int) -> PooledConnection? {
        connections[endpoint.key]?.first { !$0.closing && $0.generation == generation && $0.streams < maxStreams }
    }

    func add(_ connection: PooledConnection) {
        connections[connection.endpoint.key, default: []].append(connection)
    }

    func remove(_ connection: PooledConnection) {
        connection.closing = true
        connections[connection.endpoint.key]?.removeAll { $0 === connection }
        if connections[connection.endpoint.key]?.isEmpty == true { connections[connection.endpoint.key] = nil }
    }

    /// The peer takes no new streams on `connection` (it sent GOAWAY, or refused a stream's opening):
    /// new streams go to a new connection, and this one closes once its open streams are done.
    func retire(_ connection: PooledConnection) {
        remove(connection)
        if connection.streams == 0 { connection.channel?.close(promise: nil) }
    }

    /// A stream of `connection` ended: a retired connection, or one from older credentials, closes once
    /// it has no streams; a current one closes after `idleTimeout` without streams.
    func release(_ connection: PooledConnection, settings: TunnelClient.Settings, generation: Int) {
        connection.streams -= 1
        guard connection.streams == 0, let channel = connection.channel else { return }
        if connection.closing || connection.generation != generation {
            remove(connection)
            channel.close(promise: nil)
            return
        }
        connection.idleTimer = channel.eventLoop.assumeIsolated().scheduleTask(in: settings.idleTimeout) { [self] in
            guard connection.streams == 0 else { return }
            remove(connection)
            channel.close(promise: nil)
        }
    }
}

/// A tunnel connection and its open streams.
final class PooledConnection {
    let endpoint: TunnelEndpoint
    let generation: Int
    let ready: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>
    var channel: (any Channel)?
    var streams = 0
    var closing = false
    var idleTimer: Scheduled<Void>?

    init(endpoint: TunnelEndpoint, generation: Int, ready: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>) {
        self.endpoint = endpoint
        self.generation = generation
        self.ready = ready
    }

    func acquire() {
        streams += 1
        idleTimer?.cancel()
        idleTimer = nil
    }
}

@available(*, unavailable)
extension LoopPool: Sendable {}

@available(*, unavailable)
extension PooledConnection: Sendable {}
