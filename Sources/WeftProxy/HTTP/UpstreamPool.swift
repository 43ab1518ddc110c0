import NIOCore
import WeftCore

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
    /// Flushes of this loop's client and upstream connections, done at the end of the loop's turn.
    let flushes: FlushBatch
    private let runtime: ListenerRuntime
    private var idle: [UpstreamKey: [UpstreamConnection]] = [:]
    private var open: [ObjectIdentifier: UpstreamConnection] = [:]
    private var sweep: Scheduled<Void>?
    private var closed = false
    private var h2Pool: H2UpstreamPool?

    /// This loop's HTTP/2 connections for HTTP/2 clients, created on first use.
    var h2: H2UpstreamPool {
        if let h2Pool { return h2Pool }
        let created = H2UpstreamPool(loop: loop, runtime: runtime)
        h2Pool = created
        return created
    }

    init(loop: any EventLoop, runtime: ListenerRuntime) {
        self.loop = loop
        flushes = FlushBatch(loop: loop)
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
        h2Pool?.backendsChanged(drainTimeout: drainTimeout)
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
        h2Pool?.closeAll()
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
    /// An interim (1xx) response; the final one follows.
    func upstreamInterimResponse(_ head: HTTP1Head, bytes: ByteBuffer)
    /// The final response's head. When `whole` is given it holds the head and then the whole body,
    /// contiguous (a length-framed response that arrived in one read): the exchange writes all of it,
    /// and the response ends right after.
    func upstreamResponseHead(_ head: HTTP1Head, bytes: ByteBuffer, whole: ByteBuffer?)
    /// Bytes of the response body: as they arrived, or only the payload of a chunked body when the
    /// exchange asked for it decoded.
    func upstreamResponseBody(_ body: ByteBuffer)
    /// A `101 Switching Protocols` to a request that asked for it; `rest` holds the bytes of the new
    /// protocol that came with it. The connection parses nothing more: the exchange takes it over
    /// (or closes it).
    func upstreamSwitchedProtocols(_ head: HTTP1Head, bytes: ByteBuffer, rest: ByteBuffer)
    func upstreamResponseEnd()
    func upstreamReadComplete()
    /// The connection closed, reset or sent bytes that do not parse before the response ended.
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// Whether the client can take more response bytes now (the upstream's reads are held otherwise).
    var clientIsWritable: Bool { get }
}

/// The only handler of a connection to a backend: it is also the pooled connection. It sends the
/// request bytes it is given and finds the response's head and the end of its body in the bytes
/// that come back (`HTTP1Parser`, `HTTP1BodyReader`), passing them on without copying. While a
/// request uses it, reads pass only while the client is writable (backpressure); while idle, reads
/// stay on so a close by the backend is seen at once, and anything else the backend sends closes it
/// (a response nobody asked for). A connection that carried an upgrade request is never reused; a 101
/// to any other request closes it.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum ResponseState {
        /// No request awaits a response.
        case idle
        /// Waiting for the (rest of the) head; the search for its end resumes at `resume`.
        case head(resume: Int)
        case body(HTTP1BodyReader)
    }

    let key: UpstreamKey
    let channel: any Channel
    /// Strong until the connection closes (the pool holds open connections too; the cycle ends then).
    /// Not weak: a weak reference gives the pool a side table, and every retain of it on the request
    /// path would take the runtime's slow path.
    private var pool: UpstreamPool?
    private var context: ChannelHandlerContext?
    /// The exchange using the connection. Held strongly (no weak load per event); the exchange lets go
    /// when its attempt ends, and the connection when it closes.
    var delegate: (any UpstreamDelegate)?
    var idleSince = NIODeadline.now()
    private var pendingRead = false
    private(set) var isClosed = false
    /// No further request may use the connection (the backend sent more than the response, or
    /// ended it by closing).
    private var spent = false
    private var state = ResponseState.idle
    private var requestMethod = HTTP1Method.get
    /// The request asked for a protocol switch, so a 101 may answer it.
    private var upgradeRequested = false
    private var decodingChunks = false
    /// Response bytes not consumed yet (a head that arrived in pieces).
    private var inbound: ByteBuffer?

    init(key: UpstreamKey, channel: any Channel, pool: UpstreamPool) {
        self.key = key
        self.channel = channel
        self.pool = pool
    }

    var isUsable: Bool { !isClosed && !spent && channel.isActive }

    /// The channel's writability, as of its last change.
    private(set) var isWritable = true

    /// A request with `method` (asking for a protocol switch when `upgrade`) is about to be written:
    /// its response is read next.
    func expectResponse(to method: HTTP1Method, upgrade: Bool = false) {
        requestMethod = method
        upgradeRequested = upgrade
        // Whatever the answer, the backend may have read the request as the start of another protocol.
        if upgrade { spent = true }
        decodingChunks = false
        state = .head(resume: 0)
    }

    /// Pass only the payload of a chunked response body on (a client that cannot take chunked coding).
    func decodeChunks() {
        decodingChunks = true
    }

    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Writes `bytes` and flushes them at the end of the loop's turn (`FlushBatch`).
    func writeAndFlushAtEndOfTurn(_ bytes: ByteBuffer, _ flushes: FlushBatch) {
        guard let context else { return }
        context.write(wrapOutboundOut(bytes), promise: nil)
        flushes.add(context)
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
        isWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard delegate != nil, !isClosed else {
            close()
            return
        }
        if var held = inbound {
            inbound = nil  // `held` is then the buffer's only owner: appending does not copy it
            held.writeBuffer(&bytes)
            bytes = held
        }
        while bytes.readableBytes > 0, !isClosed {
            switch state {
            case .idle:
                close()
            case .head(let resume):
                let (end, next) = bytes.withUnsafeReadableBytes { HTTP1Parser.headEnd($0, from: resume) }
                guard let end else {
                    guard bytes.readableBytes <= HTTP1Parser.maxHeadBytes else { return close() }
                    state = .head(resume: next)
                    inbound = bytes
                    return
                }
                let headStart = bytes.readerIndex
                let raw = bytes.readSlice(length: end)!
                guard case .success(let head) = raw.withUnsafeReadableBytes({ HTTP1Parser.parseResponse($0, requestMethod: requestMethod) }),
                      let delegate
                else { return close() }
                if head.status == 101 {
                    // A switch the request did not ask for is a protocol error.
                    guard upgradeRequested else { return close() }
                    state = .idle
                    delegate.upstreamSwitchedProtocols(head, bytes: raw, rest: bytes)
                    // Unless the exchange took the connection over (this handler left the pipeline), it is done.
                    if self.context != nil { close() }
                    return
                }
                if head.status < 200 {
                    state = .head(resume: 0)
                    delegate.upstreamInterimResponse(head, bytes: raw)
                    continue
                }
                state = .body(HTTP1BodyReader(head.framing))
                // A whole length-framed body in this read goes on in one buffer with its head.
                // (`get` accessors only reach readable bytes, so the head is read again with its body.)
                var whole: ByteBuffer?
                if case .length(let length) = head.framing, !decodingChunks, bytes.readableBytes >= length {
                    bytes.moveReaderIndex(to: headStart)
                    whole = bytes.readSlice(length: end + length)
                }
                delegate.upstreamResponseHead(head, bytes: raw, whole: whole)
                guard self.delegate != nil else { return }  // the exchange let go of this connection (a retry)
                if whole != nil {
                    finishResponse(leftover: bytes.readableBytes)
                } else if head.framing == .none {
                    finishResponse(leftover: bytes.readableBytes)
                }
            case .body(var reader):
                let taken: Int
                do {
                    if decodingChunks {
                        let base = bytes
                        var parts: [ByteBuffer] = []
                        taken = try bytes.withUnsafeReadableBytes { p throws(HTTP1ParseError) in
                            try reader.read(p) { range in
                                if !range.isEmpty { parts.append(base.getSlice(at: base.readerIndex + range.lowerBound, length: range.count)!) }
                            }
                        }
                        bytes.moveReaderIndex(forwardBy: taken)
                        for part in parts { delegate?.upstreamResponseBody(part) }
                    } else {
                        taken = try bytes.withUnsafeReadableBytes { p throws(HTTP1ParseError) in try reader.read(p) { _ in } }
                        if taken > 0 { delegate?.upstreamResponseBody(bytes.readSlice(length: taken)!) }
                    }
                } catch {
                    return close()
                }
                state = .body(reader)
                if reader.isComplete { finishResponse(leftover: bytes.readableBytes) }
            }
        }
    }

    /// The response ended; bytes after it (a response nobody asked for) make the connection unusable.
    private func finishResponse(leftover: Int) {
        state = .idle
        if leftover > 0 { spent = true }
        delegate?.upstreamResponseEnd()
        if spent { close() }
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
        isWritable = context.channel.isWritable
        delegate?.upstreamWritabilityChanged(isWritable: isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The backend closed its side: a close-delimited response has ended; nothing more can
            // come, so the connection cannot be reused.
            endCloseDelimitedResponse()
            close()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endCloseDelimitedResponse()
        isClosed = true
        pool?.closed(self)
        pool = nil
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed()
        context.fireChannelInactive()
    }

    private func endCloseDelimitedResponse() {
        guard case .body(let reader) = state, reader.endsWithClose else { return }
        state = .idle
        spent = true
        delegate?.upstreamResponseEnd()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset: the connection is unusable.
        close()
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
