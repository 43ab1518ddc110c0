import NIOCore

/// One half of a pair that splices two channels: a read on one side is a write on the partner,
/// `channelReadComplete` a flush, and `read()` passes only while the partner is writable (the
/// backpressure). A half-close (`inputClosed`) becomes `close(mode: .output)` on the partner.
///
/// The pattern of swift-nio-examples' connect-proxy `GlueHandler`, plus byte and activity accounting
/// for the client side's `ConnectionMeter` (handler-local integers, no locks, per read).
final class GlueHandler {
    enum Side { case client, backend }

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let side: Side
    private let meter: ConnectionMeter?

    private init(side: Side, meter: ConnectionMeter?) {
        self.side = side
        self.meter = meter
    }

    /// A client-side and a backend-side handler paired with each other.
    static func matchedPair(meter: ConnectionMeter? = nil) -> (client: GlueHandler, backend: GlueHandler) {
        let client = GlueHandler(side: .client, meter: meter)
        let backend = GlueHandler(side: .backend, meter: meter)
        client.partner = backend
        backend.partner = client
        return (client, backend)
    }

    // MARK: Called by the partner

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool {
        context?.channel.isWritable ?? false
    }
}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        meter?.count(buffer.readableBytes, from: side)
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
        if side == .client { meter?.finish() }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or write error on either side ends the proxied connection.
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}

/// Per-connection accounting on the client's event loop: bytes not yet added to the shared
/// counters, activity for the idle timeout, and the one-time release of the connection.
final class ConnectionMeter {
    private let runtime: ListenerRuntime
    private let connection: UInt64
    private let backend: String
    private let channel: any Channel
    private var bytesIn = 0
    private var bytesOut = 0
    private var active = false
    private var idleTicks = 0
    private var tick: Scheduled<Void>?
    private var finished = false
    /// Whether the connection holds its backend's active count, released when it closes (an
    /// upgraded HTTP exchange released it when its 101 arrived).
    private let holdsBackend: Bool

    /// Unreported bytes are added to the shared counters once they reach this many.
    static let reportThreshold = 256 * 1024
    /// The idle timeout is checked this many times per period, so a connection closes between
    /// `idleTimeout` and `idleTimeout * (1 + 1/ticksPerTimeout)` after its last byte.
    static let ticksPerTimeout = 4

    init(runtime: ListenerRuntime, connection: UInt64, backend: String, client: any Channel, holdsBackend: Bool = true) {
        self.runtime = runtime
        self.holdsBackend = holdsBackend
        self.connection = connection
        self.backend = backend
        self.channel = client
    }

    func count(_ bytes: Int, from side: GlueHandler.Side) {
        active = true
        switch side {
        case .client: bytesIn &+= bytes
        case .backend: bytesOut &+= bytes
        }
        if bytesIn &+ bytesOut >= Self.reportThreshold { report() }
    }

    private func report() {
        guard bytesIn != 0 || bytesOut != 0 else { return }
        runtime.addBytes(backend: backend, in: bytesIn, out: bytesOut)
        bytesIn = 0
        bytesOut = 0
    }

    /// Starts the idle checks; must be called on the client's event loop.
    func startIdleTimer(_ timeout: TimeAmount) {
        let period = TimeAmount.nanoseconds(max(timeout.nanoseconds / Int64(Self.ticksPerTimeout), 1))
        scheduleTick(period)
    }

    private func scheduleTick(_ period: TimeAmount) {
        guard !finished else { return }
        tick = channel.eventLoop.assumeIsolated().scheduleTask(in: period) { [self] in
            if active {
                active = false
                idleTicks = 0
            } else {
                idleTicks += 1
                if idleTicks >= Self.ticksPerTimeout {
                    channel.close(promise: nil)
                    return
                }
            }
            report()
            scheduleTick(period)
        }
    }

    /// The client channel closed: reports the rest and releases the connection (once).
    func finish() {
        guard !finished else { return }
        finished = true
        tick?.cancel()
        tick = nil
        if holdsBackend {
            runtime.closed(connection: connection, backend: backend, failed: false, bytesIn: bytesIn, bytesOut: bytesOut)
        } else {
            report()
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
        }
        bytesIn = 0
        bytesOut = 0
    }
}

@available(*, unavailable)
extension ConnectionMeter: Sendable {}
