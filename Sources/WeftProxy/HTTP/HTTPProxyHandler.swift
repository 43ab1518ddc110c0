import NIOCore
import NIOHTTP1

/// The last handler of a client connection of an `http` listener (after NIO's HTTP/1.1 server
/// codec): balances each request, one at a time, over pooled keep-alive upstream connections of
/// this event loop, and streams both bodies with backpressure.
///
/// Pipelined requests (parts that arrive after the current request's end) are queued and handled in
/// order once the current response has ended; while any are queued the client is not read. This
/// replaces NIO's `HTTPServerPipelineHandler`, one handler less on every read, write and `read()`.
///
/// One request's life: a backend is picked (traffic split, then the load balancer); an idle pooled
/// connection to it is taken or a new one is opened on this loop; the head (hop-by-hop headers
/// removed) and the body go up, the response head and body come back. A retry (see `retryAllowed`)
/// picks another backend. When the response ends the upstream connection goes back to the pool if
/// both sides allow keep-alive, and the next pipelined request is read.
///
/// While a connection to the backend is being opened, request body parts that arrive are held and
/// nothing more is read; afterwards a read passes only while the upstream connection is writable,
/// and the upstream is read only while the client is writable.
final class HTTPProxyHandler: ChannelDuplexHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

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
    // The request in progress.
    private var head: HTTPRequestHead?
    private var held: [HTTPServerRequestPart] = []
    private var requestHasBody = false
    private var requestEnded = false
    private var bodySent = false
    private var idempotent = false
    private var closeAfterResponse = false
    private var clientVersion = HTTPVersion.http1_1
    private var tried: Set<String> = []
    private var attempts = 0
    // The attempt in progress.
    private var backend: String?
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

    private var pendingRead = false
    /// Parts of requests after the current one (pipelining), in arrival order.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var drainingQueue = false
    /// A request after the queued ones did not parse: answered 400 in its turn.
    private var malformedPending = false
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
        pool = runtime.pool(on: context.eventLoop)
        startIdleTimer(settings.idleTimeout, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !queued.isEmpty || !acceptsPartNow {
            if case .closed = phase { return }
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    /// Whether a part read now belongs to the current request (or starts one): false once the
    /// current request has ended and its response has not.
    private var acceptsPartNow: Bool {
        switch phase {
        case .idle: true
        case .closed: false
        case .connecting, .awaitingResponse, .responding: !requestEnded
        }
    }

    /// Hands queued pipelined parts on while the handler can take them; then resumes reading.
    private func drainQueue(context: ChannelHandlerContext) {
        guard !drainingQueue else { return }
        drainingQueue = true
        while !queued.isEmpty, acceptsPartNow {
            handle(queued.removeFirst(), context: context)
        }
        drainingQueue = false
        if case .idle = phase, queued.isEmpty {
            if malformedPending {
                malformedPending = false
                answer(.malformedRequest)
            } else if inputClosed {
                context.close(promise: nil)
            } else if pendingRead {
                pendingRead = false
                context.read()
            }
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let request):
            guard case .idle = phase else { return }
            startRequest(request, context: context)
        case .body(let body):
            switch phase {
            case .connecting:
                held.append(.body(body))
            case .awaitingResponse, .responding:
                guard let upstream, !requestEnded else { return }
                bodySent = true
                upstream.write(.body(.byteBuffer(body)))
            case .idle, .closed:
                break  // the rest of a request the proxy already answered
            }
        case .end(let trailers):
            switch phase {
            case .connecting:
                requestEnded = true
                held.append(.end(trailers))
            case .awaitingResponse, .responding:
                guard !requestEnded else { return }
                requestEnded = true
                if let upstream {
                    upstream.write(.end(requestHasBody ? trailers : nil))
                    upstream.flush()
                }
            case .idle, .closed:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if !queued.isEmpty {
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
        if context.channel.isWritable { upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if case .idle = phase, queued.isEmpty { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        if !queued.isEmpty || !acceptsPartNow {
            // A pipelined request after the current one is malformed: the ones before it are
            // answered first, then the 400 (nothing more is read: the decoder stopped).
            if case .closed = phase { return }
            malformedPending = true
            return
        }
        switch phase {
        case .idle, .connecting, .awaitingResponse:
            answer(.malformedRequest)
        case .responding, .closed:
            // The body of a request whose response is already streaming: it can only be cut short.
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasOpen: Bool
        if case .closed = phase { wasOpen = false } else { wasOpen = true }
        if wasOpen {
            if let backend {
                // The client left during an attempt: nothing to count against the backend.
                _ = runtime.attemptFinished(backend: backend, outcome: .cancelled, isRetry: attemptIsRetry)
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

    private func startRequest(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        active = true
        var forwarded = request
        let chunked = HopByHop.strip(&forwarded.headers).chunked
        let contentLength = request.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        requestHasBody = chunked || contentLength > 0
        if chunked {
            forwarded.headers.remove(name: "content-length")
            forwarded.headers.add(name: "transfer-encoding", value: "chunked")
        }
        // Setting a field of a head copies its storage: only when it changes.
        if forwarded.version != .http1_1 { forwarded.version = .http1_1 }
        head = forwarded
        clientVersion = request.version
        // HTTP/1.0 clients get one response per connection (their responses may need close-delimiting).
        closeAfterResponse = !request.isKeepAlive || request.version != .http1_1
        idempotent = Self.isIdempotent(request.method)
        requestEnded = false
        bodySent = false
        held.removeAll(keepingCapacity: true)
        tried.removeAll(keepingCapacity: true)
        attempts = 0
        phase = .connecting
        startAttempt(runtime.pickRequest(clientKey: clientKey, tried: tried, isRetry: false))
    }

    /// Framing headers are set by `startRequest` from the client's own framing (the encoder's
    /// defaults would drop the body of a GET or DELETE that has one).
    private static let encoderConfiguration: HTTPRequestEncoder.Configuration = {
        var configuration = HTTPRequestEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return configuration
    }()

    private static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: true
        default: false
        }
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
        tried.insert(chosen.id)
        backend = chosen.id
        phase = .connecting
        attemptStarted = .now()
        let key = UpstreamKey(backend: chosen.id, source: chosen.tunnel == nil ? nil : sourceIdentity(context.channel))
        // A retry opens a new connection: the pooled ones to that backend may be as stale as the last.
        if !attemptIsRetry, let pooled = pool.take(key) {
            attach(pooled)
            return
        }
        connectGeneration &+= 1
        let generation = connectGeneration
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
            _ = runtime.attemptFinished(backend: backend, outcome: .connectFailed, isRetry: attemptIsRetry)
            retryOrAnswer(afterSending: false)
        case .success(let channel):
            let latency = Double((NIODeadline.now() - attemptStarted).nanoseconds) / 1e9
            runtime.upstreamConnected(backend: backend, latency: latency)
            let upstream = UpstreamConnection(key: key, channel: channel, pool: pool)
            do {
                // Header validation is off: every header forwarded was parsed (and so validated) from the client.
                try channel.pipeline.syncOperations.addHTTPClientHandlers(
                    enableOutboundHeaderValidation: false, encoderConfiguration: Self.encoderConfiguration)
                try channel.pipeline.syncOperations.addHandler(upstream)
            } catch {
                channel.close(promise: nil)
                self.backend = nil
                _ = runtime.attemptFinished(backend: backend, outcome: .connectFailed, isRetry: attemptIsRetry)
                retryOrAnswer(afterSending: false)
                return
            }
            pool.opened(upstream)
            attach(upstream)
        }
    }

    /// Sends the request on `upstream`: the head, then what the client sent so far.
    private func attach(_ upstream: UpstreamConnection) {
        guard let context, let settings, let head else { return }
        self.upstream = upstream
        upstream.delegate = self
        phase = .awaitingResponse
        upstream.write(.head(head))
        if requestHasBody {
            for part in held {
                switch part {
                case .body(let body):
                    bodySent = true
                    upstream.write(.body(.byteBuffer(body)))
                case .end(let trailers):
                    upstream.write(.end(trailers))
                case .head:
                    break
                }
            }
            held.removeAll(keepingCapacity: true)
        } else if requestEnded {
            upstream.write(.end(nil))
        }
        upstream.flush()
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
        _ = runtime.attemptFinished(backend: backend, outcome: .failed, isRetry: attemptIsRetry)
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
            _ = runtime.attemptFinished(backend: backend, outcome: .cancelled, isRetry: attemptIsRetry)
        }
        endAttempt(reuse: false)
        runtime.proxyAnswered(answer)
        // The end of a bodyless request carries no bytes: when it is still to come it is simply
        // dropped. A body still arriving would have to be read and thrown away, so that closes.
        let close = closeAfterResponse || (inputClosed && queued.isEmpty) || (!requestEnded && requestHasBody)
            || answer == .malformedRequest
        let body = ByteBuffer(string: answer.message(listener: listenerName))
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "x-weft-proxy", value: answer.code)
        if close { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: clientVersion, status: answer.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        finishResponse(close: close, context: context)
    }

    /// Ends the response with `.end`, then starts on the next pipelined request, if any.
    private func finishResponse(close: Bool, trailers: HTTPHeaders? = nil, context: ChannelHandlerContext) {
        head = nil
        held.removeAll(keepingCapacity: true)
        if close {
            phase = .closed
            queued.removeAll()
            idleTimer?.cancel()
            runtime.closed(connection: connection, backend: nil, failed: false, bytesIn: 0, bytesOut: 0)
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: promise)
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            phase = .idle
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            drainQueue(context: context)
        }
    }

    // MARK: - Upstream side (UpstreamDelegate)

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamResponseHead(_ response: HTTPResponseHead) {
        guard case .awaitingResponse = phase, let context, let backend else { return }
        responseDeadline = nil
        let latency = NIODeadline.now() - attemptStarted
        if response.status == .serviceUnavailable, requestEnded, retryAllowed(afterSending: true) {
            // A draining or overloaded replica: another one may answer, if the budget allows a retry.
            let next = runtime.pickRequest(clientKey: clientKey, tried: tried, isRetry: true)
            if case .backend = next {
                _ = runtime.attemptFinished(backend: backend, outcome: .response(status: 503, latency: latency), isRetry: attemptIsRetry)
                endAttempt(reuse: false)
                startAttempt(next)
                return
            }
        }
        responseStatus = Int(response.status.code)
        responseLatency = latency
        upstreamReusable = response.isKeepAlive
        var forwarded = response
        HopByHop.strip(&forwarded.headers)
        if forwarded.version != clientVersion { forwarded.version = clientVersion }
        if closeAfterResponse || (inputClosed && queued.isEmpty) { forwarded.headers.add(name: "connection", value: "close") }
        phase = .responding
        context.write(wrapOutboundOut(.head(forwarded)), promise: nil)
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard case .responding = phase, let context else { return }
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    }

    func upstreamReadComplete() {
        guard case .responding = phase else { return }
        context?.flush()
    }

    func upstreamResponseEnd(_ trailers: HTTPHeaders?) {
        guard case .responding = phase, let context, let backend else { return }
        let keep = runtime.attemptFinished(
            backend: backend, outcome: .response(status: responseStatus, latency: responseLatency), isRetry: attemptIsRetry)
        // A connection whose request was not fully sent cannot carry another request.
        endAttempt(reuse: keep && upstreamReusable && requestEnded)
        let close = closeAfterResponse || (inputClosed && queued.isEmpty) || (!requestEnded && requestHasBody)
        finishResponse(close: close, trailers: trailers, context: context)
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
            _ = runtime.attemptFinished(backend: backend, outcome: .failed, isRetry: attemptIsRetry)
            retryOrAnswer(afterSending: true)
        case .responding:
            // The response was cut short; the client can only learn it from the connection closing.
            self.backend = nil
            _ = runtime.attemptFinished(
                backend: backend, outcome: .response(status: responseStatus, latency: responseLatency), isRetry: attemptIsRetry)
            context?.close(promise: nil)
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
