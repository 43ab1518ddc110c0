import NIOCore
import NIOHTTP2

/// A client connection of an `http` listener that speaks HTTP/2 (h2c with prior knowledge). It sits
/// after the connection's `NIOHTTP2Handler`, whose inline multiplexer gives each stream (one request)
/// its own channel with an `H2StreamProxy`. This handler owns the connection's admission (it counts
/// the connection closed when it closes) and closes it after the listener's idle timeout without an
/// open stream.
final class H2ProxyConnection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    let runtime: ListenerRuntime
    let connector: BackendConnector
    let settings: ListenerRuntime.Settings
    let pool: H2UpstreamPool
    let listenerName: String
    let clientKey: UInt64
    private let connection: UInt64
    private weak var channel: (any Channel)?
    private var source: String??
    private var openStreams = 0
    /// Since when no stream is open (nil while one is).
    private var idleSince: NIODeadline? = .now()
    /// At most one idle timer per connection: streams opening and closing only move `idleSince`.
    private var idleTimerArmed = false
    private var closed = false

    private init(channel: any Channel, runtime: ListenerRuntime, connector: BackendConnector, connection: UInt64,
                 settings: ListenerRuntime.Settings) {
        self.runtime = runtime
        self.connector = connector
        self.settings = settings
        self.connection = connection
        self.channel = channel
        pool = runtime.pool(on: channel.eventLoop).h2
        listenerName = runtime.configuration.name
        clientKey = ProxyConnectionHandler.clientKey(channel.remoteAddress)
    }

    /// Adds an HTTP/2 server and this handler to `channel` (active, on its event loop), which owns
    /// admission `connection` from here on.
    static func configure(_ channel: any Channel, runtime: ListenerRuntime, connector: BackendConnector,
                          connection: UInt64, settings: ListenerRuntime.Settings) throws {
        let handler = H2ProxyConnection(channel: channel, runtime: runtime, connector: connector,
                                        connection: connection, settings: settings)
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        let pipeline = channel.pipeline.syncOperations
        _ = try pipeline.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(bound.value.streamOpened(stream))
            }
        }
        try pipeline.addHandler(handler)
        handler.armIdleTimer(in: settings.idleTimeout)
    }

    /// The identity tunnelled upstream connections carry for this client (see `BackendConnector`).
    func sourceIdentity() -> String? {
        if let source { return source }
        let found = channel.flatMap { connector.sourceIdentity($0) }
        source = .some(found)
        return found
    }

    var clientChannel: (any Channel)? { channel }

    private func streamOpened(_ stream: any Channel) -> H2StreamProxy {
        openStreams += 1
        idleSince = nil
        stream.closeFuture.assumeIsolated().whenComplete { [self] _ in
            openStreams -= 1
            if openStreams == 0 {
                idleSince = .now()
                if !idleTimerArmed { armIdleTimer(in: settings.idleTimeout) }
            }
        }
        return H2StreamProxy(connection: self)
    }

    private func armIdleTimer(in delay: TimeAmount) {
        guard let channel, !closed else { return }
        idleTimerArmed = true
        channel.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleTimerArmed = false
            guard let idleSince else { return }  // busy: armed again when it is idle
            let idle = NIODeadline.now() - idleSince
            if idle >= settings.idleTimeout {
                self.channel?.close(promise: nil)
            } else {
                armIdleTimer(in: settings.idleTimeout - idle)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Connection-level frames (SETTINGS, PING, GOAWAY) are handled by NIOHTTP2Handler.
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream's error ends only that stream (its channel gets it too); any other is a
        // connection error, after which NIOHTTP2Handler has sent GOAWAY where it could.
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !closed {
            closed = true
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension H2ProxyConnection: Sendable {}
