import NIOCore
import NIOHTTP1

/// Which pooled connections a request may reuse: those to the same backend, opened for the same
/// source identity (tunnel streams carry the client workload's identity, so they are not shared
/// between workloads; direct connections have none).
struct UpstreamKey: Hashable {
    var backend: String
    var source: String?
}

/// One listener's keep-alive connections to its backends on one event loop: idle ones by backend and
/// source, most recently used first, at most `maxIdlePerKey` each, closed after `idleTimeout` unused.
/// Busy ones are tracked too, so a removed backend's connections can be closed when its drain ends.
///
/// Used only on its event loop (held in a `NIOLoopBound`), so it needs no lock.
final class UpstreamPool {
    /// Idle connections kept per backend and source; one more is closed when it becomes idle.
    static let maxIdlePerKey = 64
    /// An idle connection unused for this long is closed (backends commonly close theirs after 60 s
    /// or more; closing first avoids most requests racing a backend's close).
    static let idleTimeout = TimeAmount.seconds(30)

    let loop: any EventLoop
    private let runtime: ListenerRuntime
    private var idle: [UpstreamKey: [UpstreamConnection]] = [:]
    private var open: [ObjectIdentifier: UpstreamConnection] = [:]
    private var sweep: Scheduled<Void>?
    private var closed = false

    init(loop: any EventLoop, runtime: ListenerRuntime) {
        self.loop = loop
        self.runtime = runtime
    }

    /// The most recently used idle connection for `key`, if any is still open.
    func take(_ key: UpstreamKey) -> UpstreamConnection? {
        while let connection = idle[key]?.popLast() {
            if connection.isUsable { return connection }
            connection.close()
        }
        return nil
    }

    /// Registers a new connection (busy).
    func opened(_ connection: UpstreamConnection) {
        if closed {
            connection.close()
            return
        }
        open[ObjectIdentifier(connection)] = connection
    }

    /// A request finished on `connection` and its response ended cleanly: keeps it for reuse, or
    /// closes it when the pool for its key is full.
    func release(_ connection: UpstreamConnection) {
        guard !closed, connection.isUsable, idle[connection.key, default: []].count < Self.maxIdlePerKey else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        idle[connection.key, default: []].append(connection)
        scheduleSweep()
    }

    /// The connection closed (either side): forgets it.
    func closed(_ connection: UpstreamConnection) {
        open[ObjectIdentifier(connection)] = nil
        if var list = idle[connection.key], let index = list.firstIndex(where: { $0 === connection }) {
            list.remove(at: index)
            idle[connection.key] = list.isEmpty ? nil : list
        }
    }

    /// The listener's backends changed: idle connections of removed backends close now, busy ones
    /// when `drainTimeout` ends unless their backend came back.
    func backendsChanged(drainTimeout: TimeAmount) {
        var removed = Set<String>()
        for key in Array(idle.keys) where !runtime.isCurrent(backend: key.backend) {
            removed.insert(key.backend)
            for connection in idle.removeValue(forKey: key) ?? [] { connection.close() }
        }
        let draining = open.values.filter { !runtime.isCurrent(backend: $0.key.backend) }
        guard !draining.isEmpty else { return }
        loop.assumeIsolated().scheduleTask(in: drainTimeout) { [self] in
            for connection in draining where !runtime.isCurrent(backend: connection.key.backend) {
                connection.close()
            }
        }
    }

    /// The proxy is shutting down: closes every connection, idle or busy.
    func closeAll() {
        closed = true
        sweep?.cancel()
        let all = Array(open.values)
        idle = [:]
        for connection in all { connection.close() }
    }

    private func scheduleSweep() {
        guard sweep == nil else { return }
        sweep = loop.assumeIsolated().scheduleTask(in: .nanoseconds(Self.idleTimeout.nanoseconds / 4)) { [self] in
            sweep = nil
            let deadline = NIODeadline.now() - Self.idleTimeout
            var left = false
            for (key, list) in idle {
                let (stale, fresh) = (list.filter { $0.idleSince <= deadline }, list.filter { $0.idleSince > deadline })
                for connection in stale { connection.close() }
                idle[key] = fresh.isEmpty ? nil : fresh
                left = left || !fresh.isEmpty
            }
            if left { scheduleSweep() }
        }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}

/// What an upstream connection reports to the exchange that uses it (an `HTTPProxyHandler`).
protocol UpstreamDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPHeaders?)
    func upstreamReadComplete()
    /// The connection closed, reset or failed to parse before the response ended.
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// Whether the client can take more response bytes now (the upstream's reads are held otherwise).
    var clientIsWritable: Bool { get }
}

/// The last handler of a connection to a backend (after `HTTPRequestEncoder` and the response
/// decoder): it is also the pooled connection. While a request uses it, response parts go to that
/// request's delegate and reads pass only while the client is writable (backpressure); while idle,
/// reads stay on so a close by the backend is seen at once, and anything else the backend sends
/// closes it (a response nobody asked for).
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let key: UpstreamKey
    let channel: any Channel
    private weak var pool: UpstreamPool?
    private var context: ChannelHandlerContext?
    weak var delegate: (any UpstreamDelegate)?
    var idleSince = NIODeadline.now()
    private var pendingRead = false
    private(set) var isClosed = false

    init(key: UpstreamKey, channel: any Channel, pool: UpstreamPool) {
        self.key = key
        self.channel = channel
        self.pool = pool
    }

    var isUsable: Bool { !isClosed && channel.isActive }

    var isWritable: Bool { channel.isWritable }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The delegate's client became writable again: passes on a read held for backpressure.
    func resumeReading() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else {
            close()
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head): delegate.upstreamResponseHead(head)
        case .body(let body): delegate.upstreamResponseBody(body)
        case .end(let trailers): delegate.upstreamResponseEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, !delegate.clientIsWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The backend closed its side: a close-delimited response has ended (the decoder passed
            // on its end first); nothing more can come, so the connection cannot be reused.
            close()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        pool?.closed(self)
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset, or a response that does not parse: the connection is unusable either way.
        close()
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
