import NIOCore
import WeftCore

/// The only handler of a client connection of an `http` listener: balances each request, one at a
/// time, over pooled keep-alive upstream connections of this event loop, and streams both bodies with
/// backpressure.
///
/// Messages are forwarded as the bytes they arrived as. `HTTP1Parser` finds and validates each head
/// and `HTTP1BodyReader` the end of each body, without copying; a head is rebuilt only when it has
/// hop-by-hop fields to drop or a version to change. Pipelined requests (bytes after the current
/// request's end) wait in the inbound buffer and are parsed once the current response has ended;
/// while any wait the client is not read.
///
/// One request's life: a backend is picked (traffic split, then the load balancer); an idle pooled
/// connection to it is taken or a new one is opened on this loop; the head and the body go up, the
/// response head and body come back. A retry (see `retryAllowed`) picks another backend. When the
/// response ends the upstream connection goes back to the pool if both sides allow keep-alive, and
/// the next pipelined request is parsed.
///
/// While a connection to the backend is being opened, request body bytes that arrive are held and
/// nothing more is read; afterwards a read passes only while the upstream connection is writable,
/// and the upstream is read only while the client is writable.
final class HTTPProxyHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Between requests.
        case idle
        /// Choosing a backend or connecting to it; nothing of this attempt was sent.
        case connecting
        /// The request (or its head) was sent; no response head yet.
        case awaitingResponse
        /// The response head was sent to the client; its body is streaming.
        case responding
        case closed
    }

    /// Where the client's bytes are in the current request.
    private enum RequestState {
        /// Waiting for (the rest of) a head; the search for its end resumes at `resume`.
        case head(resume: Int)
        case body(HTTP1BodyReader)
        /// The request has ended; bytes after it are the next request's, read when its turn comes.
        case ended
    }

    private let runtime: ListenerRuntime
    private let connector: BackendConnector
    private var context: ChannelHandlerContext?
    private var pool: UpstreamPool?
    private var connection: UInt64 = 0
    private var settings: ListenerRuntime.Settings?
    private var clientKey: UInt64 = 0
    private var listenerName = ""
    private var source: String??

    private var phase = Phase.idle
    private var requestState = RequestState.head(resume: 0)
    /// Client bytes not handled yet: a head in pieces, or pipelined requests after the current one.
    private var inbound: ByteBuffer?
    // The request in progress.
    /// The head as it goes to backends (kept for retries).
    private var head: ByteBuffer?
    private var method = HTTP1Method.get
    private var held: [ByteBuffer] = []
    private var requestHasBody = false
    private var requestEnded = false
    private var bodySent = false
    private var idempotent = false
    /// The request asks for a protocol switch (see `ProtocolSwitch`).
    private var upgrading = false
    private var closeAfterResponse = false
    private var clientMinorVersion = 1
    /// The backends this request tried: the first attempt's apart, so that a request that is not
    /// retried hashes no backend id.
    private var firstBackend: String?
    private var retriedBackends: Set<String> = []
    private var tried: Set<String> {
        var all = retriedBackends
        if let firstBackend { all.insert(firstBackend) }
        return all
    }
    private var attempts = 0
    // The attempt in progress.
    private var backend: ListenerRuntime.Entry?
    private var attemptIsRetry = false
    private var attemptStarted = NIODeadline.now()
    private var upstream: UpstreamConnection?
    /// When the current attempt times out (nil: no attempt awaits a response head).
    private var responseDeadline: NIODeadline?
    /// One timer per connection, armed for the earliest deadline and re-armed when it fires early,
    /// so keep-alive requests do not schedule and cancel a timer each.
    private var timeoutTimer: Scheduled<Void>?
    private var timeoutTimerDeadline: NIODeadline?
    private var connectGeneration: UInt64 = 0
    private var responseStatus = 0
    private var responseLatency = TimeAmount.zero
    private var upstreamReusable = false
    /// A whole response (head and body) not written yet: `finishResponse` writes and flushes it at once.
    private var wholeResponse: ByteBuffer?

    private var pendingRead = false
    /// Request body bytes were written to the upstream connection since its last flush.
    private var upstreamUnflushed = false
    private var handlingInbound = false
    private var inputClosed = false
    private var active = false
    private var idleTicks = 0
    private var idleTimer: Scheduled<Void>?

    init(runtime: ListenerRuntime, connector: BackendConnector) {
        self.runtime = runtime
        self.connector = connector
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The connection speaks HTTP/2 (`ProtocolSniffer` saw the preface before any request): hands
    /// this connection's admission to the HTTP/2 handler and goes inert, to be removed. Nil when the
    /// connection was not admitted.
    func handOver() -> (connection: UInt64, settings: ListenerRuntime.Settings)? {
        guard let settings, case .idle = phase else { return nil }
        phase = .closed
        idleTimer?.cancel()
        return (connection, settings)
    }

    // MARK: - Client side

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard let (id, settings) = runtime.admit(context.channel) else {
            phase = .closed
            context.close(promise: nil)
            return
        }
        connection = id
        self.settings = settings
        listenerName = runtime.configuration.name
        clientKey = ProxyConnectionHandler.clientKey(context.channel.remoteAddress)
        clientIsWritable = context.channel.isWritable
        pool = runtime.pool(on: context.eventLoop)
        startIdleTimer(settings.idleTimeout, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closed = phase { return }
        var bytes = unwrapInboundIn(data)
        if var previous = inbound {
            inbound = nil  // `previous` is then the buffer's only owner: appending does not copy it
            previous.writeBuffer(&bytes)
            inbound = previous
        } else {
            inbound = bytes
        }
        handleInbound(context: context)
    }

    /// Handles the client bytes the current request can take: the next head when idle, body bytes
    /// while the request is open. Bytes after the request's end wait (pipelining) until its
    /// response has ended; while they wait the client is not read. Not reentered: a response that
    /// ends while this runs (the proxy's own answer) lets the loop go on to the next request.
    private func handleInbound(context: ChannelHandlerContext) {
        guard !handlingInbound else { return }
        handlingInbound = true
        parsing: while var bytes = inbound, bytes.readableBytes > 0 {
            switch requestState {
            case .ended:
                break parsing
            case .head(let resume):
                guard case .idle = phase else { break parsing }
                let (end, next) = bytes.withUnsafeReadableBytes { HTTP1Parser.headEnd($0, from: resume) }
                guard let end else {
                    requestState = .head(resume: next)
                    if bytes.readableBytes > HTTP1Parser.maxHeadBytes {
                        inbound = nil
                        answer(.malformedRequest(HTTP1ParseError.tooLarge.description))
                    }
                    break parsing
                }
                let raw = bytes.readSlice(length: end)!
                inbound = bytes.readableBytes > 0 ? bytes : nil
                switch raw.withUnsafeReadableBytes({ HTTP1Parser.parseRequest($0) }) {
                case .failure(let error):
                    inbound = nil
                    answer(.malformedRequest(error.description))
                    break parsing
                case .success(let parsed):
                    startRequest(parsed, raw: raw)
                }
            case .body(var reader):
                let taken: Int
                do {
                    taken = try bytes.withUnsafeReadableBytes { p throws(HTTP1ParseError) in try reader.read(p) { _ in } }
                } catch {
                    inbound = nil
                    requestBodyInvalid(error)
                    break parsing
                }
                let body = bytes.readSlice(length: taken)!
                inbound = bytes.readableBytes > 0 ? bytes : nil
                requestState = reader.isComplete ? .ended : .body(reader)
                requestBody(body)
                if reader.isComplete { requestEnd() }
            }
        }
        if inbound?.readableBytes == 0 { inbound = nil }
        handlingInbound = false
        if case .idle = phase { betweenRequests(context: context) }
    }

    /// No request is in progress: closes a half-closed client's connection, or reads on.
    private func betweenRequests(context: ChannelHandlerContext) {
        if inputClosed, inbound == nil {
            closeWhenSent(context)
        } else if pendingRead {
            pendingRead = false
            context.read()
        }
    }

    private func requestBody(_ body: ByteBuffer) {
        switch phase {
        case .connecting:
            held.append(body)
        case .awaitingResponse, .responding:
            guard let upstream else { return }
            bodySent = true
            upstreamUnflushed = true
            upstream.write(body)
        case .idle, .closed:
            break  // the rest of a request the proxy already answered
        }
    }

    private func requestEnd() {
        requestEnded = true
        switch phase {
        case .awaitingResponse, .responding:
            upstreamUnflushed = false
            upstream?.flush()
        case .connecting, .idle, .closed:
            break
        }
    }

    /// The request's body does not parse: a 400 if nothing of the response was sent, else the
    /// connection can only be cut.
    private func requestBodyInvalid(_ error: HTTP1ParseError) {
        switch phase {
        case .idle, .connecting, .awaitingResponse:
            answer(.malformedRequest(error.description))
        case .responding, .closed:
            phase = .closed
            context?.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if upstreamUnflushed {
            upstreamUnflushed = false
            upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if case .ended = requestState, inbound != nil {
            pendingRead = true
            return
        }
        switch phase {
        case .connecting where requestHasBody && !requestEnded:
            pendingRead = true
        case .awaitingResponse, .responding:
            if let upstream, !requestEnded, !upstream.isWritable {
                pendingRead = true
            } else {
                context.read()
            }
        default:
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientIsWritable = context.channel.isWritable
        if clientIsWritable { upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            // Between requests (a partial head can no longer be completed) the connection is done.
            if case .idle = phase { closeWhenSent(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasOpen: Bool
        if case .closed = phase { wasOpen = false } else { wasOpen = true }
        if wasOpen {
            if let backend {
                // The client left during an attempt: nothing to count against the backend.
                _ = runtime.attemptFinished(backend, outcome: .cancelled, isRetry: attemptIsRetry)
            }
            endAttempt(reuse: false)
            phase = .closed
            idleTimer?.cancel()
            timeoutTimer?.cancel()
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
        }
        context.fireChannelInactive()
    }

    // MARK: - A request

    private func startRequest(_ request: HTTP1Head, raw: ByteBuffer) {
        active = true
        upgrading = request.upgrade
        // Backends always get HTTP/1.1, without this connection's hop-by-hop fields (an upgrade's stay).
        head = HeadForwarding.forward(raw, request, minorVersion: 1, keepingUpgrade: upgrading)
        method = request.method
        clientMinorVersion = request.minorVersion
        requestHasBody = request.framing != .none
        // HTTP/1.0 clients get one response per connection (their responses may need close-delimiting).
        closeAfterResponse = !request.keepAlive || request.minorVersion == 0
        // Once sent, an upgrade is not retried: the backend may have switched already.
        idempotent = request.isIdempotent && !upgrading
        bodySent = false
        held.removeAll(keepingCapacity: true)
        wholeResponse = nil
        firstBackend = nil
        if !retriedBackends.isEmpty { retriedBackends.removeAll(keepingCapacity: true) }
        attempts = 0
        if requestHasBody {
            requestEnded = false
            requestState = .body(HTTP1BodyReader(request.framing))
        } else {
            requestEnded = true
            requestState = .ended
        }
        phase = .connecting
        startAttempt(runtime.pickRequest(clientKey: clientKey, tried: [], isRetry: false))
    }

    /// Starts an attempt with `pick`, or answers when there is no backend for it.
    private func startAttempt(_ pick: ListenerRuntime.RequestPick) {
        guard let context, let pool, let settings else { return }
        let chosen: ListenerRuntime.Pick
        switch pick {
        case .backend(let p): chosen = p
        case .noBackend: return answer(attempts == 0 ? .noBackend : .upstreamFailed)
        case .noBudget: return answer(.upstreamFailed)
        }
        attemptIsRetry = attempts > 0
        attempts += 1
        if attemptIsRetry {
            retriedBackends.insert(chosen.id)
        } else {
            firstBackend = chosen.id
        }
        backend = chosen.entry
        phase = .connecting
        let key = UpstreamKey(backend: chosen.id, source: chosen.tunnel == nil ? nil : sourceIdentity(context.channel))
        // A retry opens a new connection: the pooled ones to that backend may be as stale as the last.
        // So does an upgrade, which cannot be retried.
        if !attemptIsRetry, !upgrading, let pooled = pool.take(key) {
            attach(pooled)
            return
        }
        connectGeneration &+= 1
        let generation = connectGeneration
        attemptStarted = .now()
        connector.connect(chosen, context.channel, settings.connectTimeout)
            .assumeIsolated()
            .whenComplete { result in
                self.connectFinished(result, generation: generation, key: key)
            }
    }

    private func sourceIdentity(_ channel: any Channel) -> String? {
        if let source { return source }
        let found = connector.sourceIdentity(channel)
        source = .some(found)
        return found
    }

    private func connectFinished(_ result: Result<any Channel, any Error>, generation: UInt64, key: UpstreamKey) {
        guard generation == connectGeneration, case .connecting = phase, let backend, let pool else {
            // The client left, or the request was answered, while connecting.
            if case .success(let channel) = result { channel.close(promise: nil) }
            return
        }
        switch result {
        case .failure(let refusal as TunnelRefusal) where refusal.isDenied:
            // Authorization at the destination refused the caller: the backend is healthy and every other
            // endpoint would refuse too, so no outlier mark and no retry.
            answer(.denied(reason: refusal.reason))
        case .failure:
            self.backend = nil
            _ = runtime.attemptFinished(backend, outcome: .connectFailed, isRetry: attemptIsRetry)
            retryOrAnswer(afterSending: false)
        case .success(let channel):
            let latency = Double((NIODeadline.now() - attemptStarted).nanoseconds) / 1e9
            runtime.upstreamConnected(backend, latency: latency)
            let upstream = UpstreamConnection(key: key, channel: channel, pool: pool)
            do {
                try channel.pipeline.syncOperations.addHandler(upstream)
            } catch {
                channel.close(promise: nil)
                self.backend = nil
                _ = runtime.attemptFinished(backend, outcome: .connectFailed, isRetry: attemptIsRetry)
                retryOrAnswer(afterSending: false)
                return
            }
            pool.opened(upstream)
            attach(upstream)
        }
    }

    /// Sends the request on `upstream`: the head, then what the client sent of the body so far.
    private func attach(_ upstream: UpstreamConnection) {
        guard let context, let settings, let head, let pool else { return }
        self.upstream = upstream
        upstream.delegate = self
        upstream.expectResponse(to: method, upgrade: upgrading)
        phase = .awaitingResponse
        if held.isEmpty {
            upstream.writeAndFlushAtEndOfTurn(head, pool.flushes)
        } else {
            upstream.write(head)
            for body in held {
                bodySent = true
                upstream.write(body)
            }
            held.removeAll(keepingCapacity: true)
            upstream.flush()
        }
        attemptStarted = .now()
        armTimeout(attemptStarted + settings.requestTimeout, context: context)
        if pendingRead, !requestEnded, upstream.isWritable {
            pendingRead = false
            context.read()
        }
    }

    /// Whether another attempt may follow a failed one. A request that reached a backend is retried
    /// only when it is idempotent and had no body (so nothing of it was lost); one that never left the
    /// proxy (the connect failed) is retried whatever its method, with its held body. Both are bounded
    /// by `retries.attempts`; the budget is checked by the pick.
    private func retryAllowed(afterSending: Bool) -> Bool {
        guard let settings, attempts <= settings.retryAttempts else { return false }
        return afterSending ? idempotent && !requestHasBody : !bodySent
    }

    private func retryOrAnswer(afterSending: Bool) {
        guard retryAllowed(afterSending: afterSending) else { return answer(.upstreamFailed) }
        phase = .connecting
        startAttempt(runtime.pickRequest(clientKey: clientKey, tried: tried, isRetry: true))
    }

    private func armTimeout(_ deadline: NIODeadline, context: ChannelHandlerContext) {
        responseDeadline = deadline
        if let armed = timeoutTimerDeadline, armed <= deadline { return }
        timeoutTimer?.cancel()
        timeoutTimerDeadline = deadline
        timeoutTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timeoutTimer = nil
            timeoutTimerDeadline = nil
            guard let responseDeadline, let context = self.context else { return }
            if responseDeadline <= .now() {
                timedOut()
            } else {
                armTimeout(responseDeadline, context: context)
            }
        }
    }

    private func timedOut() {
        guard case .awaitingResponse = phase, let backend else { return }
        responseDeadline = nil
        self.backend = nil
        _ = runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
        answer(.timeout)
    }

    /// Detaches the current upstream connection: back to the pool when `reuse` (and the backend is
    /// still configured), closed otherwise.
    private func endAttempt(reuse: Bool) {
        responseDeadline = nil
        connectGeneration &+= 1
        backend = nil
        guard let upstream else { return }
        self.upstream = nil
        upstream.delegate = nil
        if reuse, let pool {
            pool.release(upstream)
        } else {
            upstream.close()
        }
    }

    /// Answers the request itself (no response byte was sent yet), then waits for the next request
    /// or closes the connection.
    private func answer(_ answer: HTTPProxyAnswer) {
        guard let context else { return }
        if let backend {
            _ = runtime.attemptFinished(backend, outcome: .cancelled, isRetry: attemptIsRetry)
        }
        endAttempt(reuse: false)
        runtime.proxyAnswered(answer)
        // A body still arriving would have to be read and thrown away, so that closes; so does a
        // request that did not parse (where the next one would start is unknown).
        var malformed = false
        if case .malformedRequest = answer { malformed = true }
        let close = closesAfterResponse || (!requestEnded && requestHasBody) || malformed
        context.write(wrapOutboundOut(answer.response(listener: listenerName, minorVersion: clientMinorVersion, close: close)), promise: nil)
        finishResponse(close: close, context: context)
    }

    /// The response has been written: flushes it, then closes or starts on the next pipelined request.
    private func finishResponse(close: Bool, context: ChannelHandlerContext) {
        head = nil
        held.removeAll(keepingCapacity: true)
        let last = wholeResponse.take()
        if close {
            phase = .closed
            inbound = nil
            idleTimer?.cancel()
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            closeWhenSent(context)
        } else {
            phase = .idle
            requestState = .head(resume: 0)
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            if let pool {
                pool.flushes.add(context)
            } else {
                context.flush()
            }
            // Within `handleInbound`, its loop goes on with the next request.
            if !handlingInbound { handleInbound(context: context) }
        }
    }

    /// Closes the client's connection once what was written to it has been sent (a flush may be
    /// waiting for the end of the loop's turn, and a close would drop unsent bytes).
    private func closeWhenSent(_ context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: - Upstream side (UpstreamDelegate)

    /// The client channel's writability, as of its last change (read per upstream read).
    private(set) var clientIsWritable = true

    /// Whether the client's connection closes after the current response: the request asked for it,
    /// or the client has half-closed and nothing of a next request is waiting.
    private var closesAfterResponse: Bool { closeAfterResponse || (inputClosed && !hasWaitingBytes) }

    private var hasWaitingBytes: Bool { (inbound?.readableBytes ?? 0) > 0 }

    func upstreamInterimResponse(_ head: HTTP1Head, bytes: ByteBuffer) {
        guard case .awaitingResponse = phase, let context, clientMinorVersion == 1 else { return }
        // 1xx responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients as they are.
        context.writeAndFlush(wrapOutboundOut(HeadForwarding.forward(bytes, head, minorVersion: 1)), promise: nil)
    }

    func upstreamSwitchedProtocols(_ response: HTTP1Head, bytes: ByteBuffer, rest: ByteBuffer) {
        guard case .awaitingResponse = phase, let context, let backend, let upstream, let pool, let settings else { return }
        self.backend = nil
        responseDeadline = nil
        guard requestEnded else {
            // The backend switched before it had all of the request.
            _ = runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
            return answer(.upstreamFailed)
        }
        _ = runtime.attemptFinished(
            backend, outcome: .response(status: 101, latency: .now() - attemptStarted), isRetry: attemptIsRetry)
        // The connection is the relay's now: no request timeout, the relay's idle timeout.
        phase = .closed
        self.upstream = nil
        upstream.delegate = nil
        idleTimer?.cancel()
        timeoutTimer?.cancel()
        let clientBytes = inbound
        inbound = nil
        ProtocolSwitch.splice(
            client: context, handler: self, upstream: upstream, pool: pool,
            meter: ConnectionMeter(runtime: runtime, connection: connection, backend: backend.id, client: context.channel, holdsBackend: false),
            idleTimeout: settings.idleTimeout, response: HeadForwarding.forward(bytes, response, minorVersion: 1, keepingUpgrade: true),
            upstreamBytes: rest, clientBytes: clientBytes, clientInputClosed: inputClosed)
    }

    func upstreamResponseHead(_ response: HTTP1Head, bytes: ByteBuffer, whole: ByteBuffer?) {
        guard case .awaitingResponse = phase, let context, let backend else { return }
        responseDeadline = nil
        let latency = NIODeadline.now() - attemptStarted
        if response.status == 503, requestEnded, retryAllowed(afterSending: true) {
            // A draining or overloaded replica: another one may answer, if the budget allows a retry.
            let next = runtime.pickRequest(clientKey: clientKey, tried: tried, isRetry: true)
            if case .backend = next {
                _ = runtime.attemptFinished(backend, outcome: .response(status: 503, latency: latency), isRetry: attemptIsRetry)
                endAttempt(reuse: false)
                startAttempt(next)
                return
            }
        }
        responseStatus = response.status
        responseLatency = latency
        upstreamReusable = response.keepAlive
        // A body that ends with the backend's close ends with the client's close too; an HTTP/1.0
        // client gets a chunked body decoded (it cannot take chunked coding).
        let decode = clientMinorVersion == 0 && response.framing == .chunked
        if response.framing == .untilClose || decode { closeAfterResponse = true }
        if decode { upstream?.decodeChunks() }
        phase = .responding
        let addingClose = closesAfterResponse
        if let whole, HeadForwarding.passesUnchanged(response, minorVersion: clientMinorVersion, addingClose: addingClose) {
            // Head and body in one write, with the flush, when the response ends (right after this).
            wholeResponse = whole
            return
        }
        context.write(wrapOutboundOut(HeadForwarding.forward(
            bytes, response, minorVersion: clientMinorVersion, addingClose: addingClose,
            droppingTransferEncoding: decode)), promise: nil)
        if let whole {
            context.write(wrapOutboundOut(whole.getSlice(at: whole.readerIndex + bytes.readableBytes, length: whole.readableBytes - bytes.readableBytes)!), promise: nil)
        }
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard case .responding = phase, let context else { return }
        context.write(wrapOutboundOut(body), promise: nil)
    }

    func upstreamReadComplete() {
        guard case .responding = phase else { return }
        context?.flush()
    }

    func upstreamResponseEnd() {
        guard case .responding = phase, let context, let backend else { return }
        let keep = runtime.attemptFinished(
            backend, outcome: .response(status: responseStatus, latency: responseLatency), isRetry: attemptIsRetry)
        // A connection whose request was not fully sent cannot carry another request.
        endAttempt(reuse: keep && upstreamReusable && requestEnded)
        let close = closesAfterResponse || !requestEnded
        finishResponse(close: close, context: context)
    }

    func upstreamClosed() {
        upstream = nil
        guard let backend else { return }
        switch phase {
        case .awaitingResponse:
            // Nothing of the response arrived: typically a pooled connection the backend had just
            // closed, or a replica that stopped. Retried when nothing of the request can be lost.
            self.backend = nil
            responseDeadline = nil
            _ = runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
            retryOrAnswer(afterSending: true)
        case .responding:
            // The response was cut short; the client can only learn it from the connection closing.
            self.backend = nil
            _ = runtime.attemptFinished(
                backend, outcome: .response(status: responseStatus, latency: responseLatency), isRetry: attemptIsRetry)
            if let context { closeWhenSent(context) }
        case .idle, .connecting, .closed:
            break
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    // MARK: - Idle client connections

    private func startIdleTimer(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        let period = TimeAmount.nanoseconds(max(timeout.nanoseconds / Int64(ConnectionMeter.ticksPerTimeout), 1))
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: period) { [self] in
            guard let context = self.context else { return }
            if case .idle = phase, !active {
                idleTicks += 1
                if idleTicks >= ConnectionMeter.ticksPerTimeout {
                    context.close(promise: nil)
                    return
                }
            } else {
                idleTicks = 0
            }
            active = false
            startIdleTimer(timeout, context: context)
        }
    }
}

@available(*, unavailable)
extension HTTPProxyHandler: Sendable {}
