import NIOCore
import NIOPosix
import WeftPKI

/// Opens connections to backends on the client's own event loop.
struct BackendConnector: Sendable {
    var connect: @Sendable (_ backend: ListenerRuntime.Pick, _ client: any Channel, _ timeout: TimeAmount) -> EventLoopFuture<any Channel>
    /// The identity tunnel streams opened for `client` carry (nil when none, or without a mesh):
    /// HTTP mode pools tunnelled connections per backend and this identity.
    var sourceIdentity: @Sendable (_ client: any Channel) -> String? = { _ in nil }

    /// TCP with TCP_NODELAY and half-closure, on the given loop (no hop between the two channels).
    static let tcp = BackendConnector(connect: { backend, client, timeout in
        tcpConnect(backend.address, loop: client.eventLoop, timeout: timeout)
    })

    static func tcpConnect(_ address: SocketAddress, loop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: address)
    }

    /// Backends on this node by TCP; backends on other nodes through their tunnel, as the workload
    /// `mesh.sourceIdentity` finds behind the client connection (none when it is not a local replica).
    static func mesh(_ mesh: MeshRouting) -> BackendConnector {
        BackendConnector(connect: { backend, client, timeout in
            guard let tunnel = backend.tunnel else {
                return tcpConnect(backend.address, loop: client.eventLoop, timeout: timeout)
            }
            let source = mesh.sourceIdentity(client.remoteAddress, client.localAddress)
            return mesh.tunnels.openStream(to: tunnel, authority: backend.id, source: source?.description,
                                           on: client.eventLoop, timeout: timeout)
        }, sourceIdentity: { client in
            mesh.sourceIdentity(client.remoteAddress, client.localAddress)?.description
        })
    }
}

/// How the node proxy reaches backends on other nodes: the tunnel client, and how to tell which
/// local workload opened a client connection (by its `remote` and `local` addresses).
public struct MeshRouting: Sendable {
    public var tunnels: TunnelClient
    public var sourceIdentity: @Sendable (_ remote: SocketAddress?, _ local: SocketAddress?) -> SPIFFEID?

    public init(tunnels: TunnelClient, sourceIdentity: @escaping @Sendable (SocketAddress?, SocketAddress?) -> SPIFFEID?) {
        self.tunnels = tunnels
        self.sourceIdentity = sourceIdentity
    }
}

/// The first handler of an accepted connection: admits it, picks a backend and connects (trying
/// other backends on failure, up to `connectAttempts`), holding what the client already sent; then
/// hands the two channels to a `GlueHandler` pair and removes itself.
///
/// The accepted channel starts with autoRead off and nothing is read until the backend is connected:
/// the kernel holds what the client sent, so there is no read interest to add and remove again (two
/// `epoll_ctl` per connection). Bytes and a half-close that arrive anyway (NIO reads on an early
/// EOF) are held and passed on. Once spliced, autoRead goes on and the glue's `read()` gating takes over.
final class ProxyConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum State {
        case idle
        case connecting
        case spliced
        case closed
    }

    private let runtime: ListenerRuntime
    private let connector: BackendConnector
    private var state = State.idle
    private var connection: UInt64 = 0
    private var settings: ListenerRuntime.Settings?
    private var clientKey: UInt64 = 0
    private var buffered: ByteBuffer?
    private var inputClosed = false
    private var tried: Set<String> = []
    private var attempts = 0

    init(runtime: ListenerRuntime, connector: BackendConnector = .tcp) {
        self.runtime = runtime
        self.connector = connector
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard let (id, settings) = runtime.admit(context.channel) else {
            state = .closed
            context.close(promise: nil)
            return
        }
        connection = id
        self.settings = settings
        clientKey = Self.clientKey(context.channel.remoteAddress)
        state = .connecting
        connectNext(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .connecting = state else { return }
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .connecting, .idle:
            // The backend connect in flight (if any) sees `.closed` and releases its backend.
            state = .closed
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
        case .spliced, .closed:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func connectNext(context: ChannelHandlerContext) {
        guard let settings, attempts < settings.connectAttempts,
              let pick = runtime.pick(clientKey: clientKey, tried: tried)
        else {
            giveUp(context: context)
            return
        }
        attempts += 1
        tried.insert(pick.id)
        let started = NIODeadline.now()
        connector.connect(pick, context.channel, settings.connectTimeout)
            .assumeIsolated()
            .whenComplete { result in
                self.connectFinished(result, backend: pick.id, started: started, context: context)
            }
    }

    private func connectFinished(_ result: Result<any Channel, any Error>, backend: String, started: NIODeadline, context: ChannelHandlerContext) {
        switch result {
        case .failure(let error as TunnelRefusal) where error.isDenied:
            // Authorization refused the stream at the destination: any other endpoint would too, and
            // the backend is healthy, so no retry and no outlier mark.
            runtime.abandoned(backend: backend)
            giveUp(context: context)
        case .failure:
            runtime.connectFailed(connection: connection, backend: backend)
            if case .connecting = state { connectNext(context: context) }
        case .success(let upstream):
            guard case .connecting = state else {
                // The client left while connecting.
                upstream.close(promise: nil)
                runtime.abandoned(backend: backend)
                return
            }
            let latency = Double((NIODeadline.now() - started).nanoseconds) / 1e9
            switch runtime.connected(connection: connection, backend: backend, latency: latency, channel: context.channel) {
            case .abort:
                upstream.close(promise: nil)
                state = .closed
                runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
                context.close(promise: nil)
            case .pickAnother:
                upstream.close(promise: nil)
                attempts -= 1
                connectNext(context: context)
            case .proceed(let closeAfter):
                splice(context: context, upstream: upstream, backend: backend, closeAfter: closeAfter)
            }
        }
    }

    private func splice(context: ChannelHandlerContext, upstream: any Channel, backend: String, closeAfter: TimeAmount?) {
        let meter = ConnectionMeter(runtime: runtime, connection: connection, backend: backend, client: context.channel)
        let glue = GlueHandler.matchedPair(meter: meter)
        state = .spliced
        do {
            try upstream.pipeline.syncOperations.addHandler(glue.backend)
            try context.pipeline.syncOperations.addHandler(glue.client, position: .after(self))
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            meter.finish()
            return
        }
        if var early = buffered {
            buffered = nil
            meter.count(early.readableBytes, from: .client)
            upstream.writeAndFlush(NIOAny(early.readSlice(length: early.readableBytes)!), promise: nil)
        }
        if inputClosed {
            upstream.close(mode: .output, promise: nil)
        }
        if let settings {
            meter.startIdleTimer(settings.idleTimeout)
        }
        if let closeAfter {
            let client = context.channel
            context.eventLoop.scheduleTask(in: closeAfter) { client.close(promise: nil) }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if let options = context.channel.syncOptions {
            try? options.setOption(.autoRead, value: true)
        } else {
            context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        }
    }

    private func giveUp(context: ChannelHandlerContext) {
        guard case .connecting = state else { return }
        state = .closed
        runtime.closed(connection: connection, backend: nil, failed: true, bytesIn: 0, bytesOut: 0)
        context.close(promise: nil)
    }

    /// A hash of the client's IP address (not its port), for policies that keep a client on one backend.
    static func clientKey(_ address: SocketAddress?) -> UInt64 {
        guard let address else { return 0 }
        // sockaddr_in: family/len (2), port (2), address (4); sockaddr_in6: ... flowinfo (4), address (16).
        let range: Range<Int>
        switch address {
        case .v4: range = 4..<8
        case .v6: range = 8..<24
        default: return 0
        }
        return address.withSockAddr { pointer, size in
            let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: size)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
            for i in range where i < size {
                hash = (hash ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01b3
            }
            return hash
        }
    }
}

@available(*, unavailable)
extension ProxyConnectionHandler: Sendable {}
