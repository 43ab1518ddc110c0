import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream of a client (one request) on an `http` listener: balanced on its own with the
/// listener's policy and traffic split, forwarded on a stream of a pooled HTTP/2 connection to the
/// backend (`H2UpstreamPool`), HEADERS, DATA and trailers passing both ways as they come.
///
/// Backpressure is HTTP/2 flow control: a side is read only while the other side's stream is
/// writable (its peer's window is open), and a stream window opens again only as its frames are read.
/// While the upstream stream is being opened, what the client sent is held and nothing more is read.
///
/// Counted like an HTTP/1.1 request: `attemptFinished` with the response `:status` and the latency to
/// the response head; `http.timeoutMs` bounds the wait for that head. A stream whose upstream
/// connection could not be made is retried (nothing of it was sent); every other failure gets the
/// proxy's answer (`H2Forwarding.answer`) or, once the response has started, a reset.
final class H2StreamProxy: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum Phase {
        /// No request HEADERS yet.
        case awaitingRequest
        /// Choosing a backend or opening a stream to it; nothing of this attempt was sent.
        case connecting
        /// The request HEADERS were sent; no final response head yet.
        case awaitingResponse
        case responding
        /// The response ended (or the proxy answered); what the client still sends is dropped.
        case done
    }

    private let connection: H2ProxyConnection
    private var context: ChannelHandlerContext?
    private var phase = Phase.awaitingRequest
    private var requestHeaders = HPACKHeaders()
    private var requestEnded = false
    private var grpc = false
    private var held: [HTTP2Frame.FramePayload] = []
    private var attempts = 0
    private var tried: Set<String> = []
    private var backend: ListenerRuntime.Entry?
    private var attemptIsRetry = false
    private var attemptStarted = NIODeadline.now()
    private var generation: UInt64 = 0
    private var timeout: Scheduled<Void>?
    private var upstream: H2UpstreamStream?
    private var status = 0
    private var latency = TimeAmount.zero
    private var pendingRead = false
    private var upstreamUnflushed = false

    init(connection: H2ProxyConnection) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch payload {
        case .headers(let headers):
            if case .awaitingRequest = phase {
                requestHeaders = H2Forwarding.forward(headers.headers)
                grpc = H2Forwarding.isGRPC(requestHeaders)
                requestEnded = headers.endStream
                phase = .connecting
                start(connection.runtime.pickRequest(clientKey: connection.clientKey, tried: [], isRetry: false))
            } else {
                // Trailers.
                if headers.endStream { requestEnded = true }
                toUpstream(.headers(.init(headers: H2Forwarding.forward(headers.headers), endStream: headers.endStream)))
            }
        case .data(let data):
            if data.endStream { requestEnded = true }
            // An empty DATA frame without END_STREAM carries nothing (see `H2UpstreamStream`).
            if data.data.readableBytes > 0 || data.endStream { toUpstream(payload) }
        default:
            break  // RST_STREAM closes this channel; window updates and priority are NIOHTTP2's.
        }
    }

    private func toUpstream(_ payload: HTTP2Frame.FramePayload) {
        switch phase {
        case .connecting:
            held.append(payload)
        case .awaitingResponse, .responding, .done:
            guard let upstream else { return }
            upstream.write(payload)
            upstreamUnflushed = true
        case .awaitingRequest:
            break
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
        switch phase {
        case .connecting where !requestEnded:
            pendingRead = true
        case .awaitingResponse, .responding, .done:
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

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The stream ended, or the client reset it, or the connection went away.
        if let backend {
            self.backend = nil
            _ = connection.runtime.attemptFinished(backend, outcome: .cancelled, isRetry: attemptIsRetry)
        }
        endAttempt()
        phase = .done
        context.fireChannelInactive()
    }

    // MARK: - Attempts

    private func start(_ pick: ListenerRuntime.RequestPick) {
        let chosen: ListenerRuntime.Pick
        switch pick {
        case .backend(let p): chosen = p
        case .noBackend: return answer(attempts == 0 ? .noBackend : .upstreamFailed)
        case .noBudget: return answer(.upstreamFailed)
        }
        guard let client = connection.clientChannel else { return }
        attemptIsRetry = attempts > 0
        attempts += 1
        tried.insert(chosen.id)
        backend = chosen.entry
        phase = .connecting
        attemptStarted = .now()
        generation &+= 1
        let generation = generation
        let key = UpstreamKey(backend: chosen.id, source: chosen.tunnel == nil ? nil : connection.sourceIdentity())
        connection.pool.openStream(chosen, key: key, client: client, connector: connection.connector,
                                   connectTimeout: connection.settings.connectTimeout)
            .assumeIsolated()
            .whenComplete { result in self.opened(result, generation: generation) }
    }

    private func opened(_ result: Result<any Channel, any Error>, generation: UInt64) {
        guard generation == self.generation, case .connecting = phase, let backend, let context else {
            if case .success(let stream) = result { stream.close(promise: nil) }
            return
        }
        let runtime = connection.runtime
        switch result {
        case .failure(let failure as H2UpstreamPool.ConnectFailure):
            if let refusal = failure.underlying as? TunnelRefusal, refusal.isDenied {
                return answer(.denied(reason: refusal.reason))
            }
            self.backend = nil
            _ = runtime.attemptFinished(backend, outcome: .connectFailed, isRetry: attemptIsRetry)
            // Nothing of the request left the proxy: another backend may take it, within the limits.
            guard attempts <= connection.settings.retryAttempts else { return answer(.upstreamFailed) }
            start(runtime.pickRequest(clientKey: connection.clientKey, tried: tried, isRetry: true))
        case .failure:
            // The connection is up but gave no stream (closed, or it does not speak HTTP/2).
            self.backend = nil
            _ = runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
            answer(.upstreamFailed)
        case .success(let stream):
            let upstream = H2UpstreamStream(client: self)
            do {
                try stream.pipeline.syncOperations.addHandler(upstream)
            } catch {
                stream.close(promise: nil)
                self.backend = nil
                _ = runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
                return answer(.upstreamFailed)
            }
            self.upstream = upstream
            phase = .awaitingResponse
            upstream.write(.headers(.init(headers: requestHeaders, endStream: requestEnded && held.isEmpty)))
            for payload in held { upstream.write(payload) }
            held.removeAll()
            upstream.flush()
            attemptStarted = .now()
            armTimeout(context: context)
            if pendingRead, !requestEnded, upstream.isWritable {
                pendingRead = false
                context.read()
            }
        }
    }

    private func armTimeout(context: ChannelHandlerContext) {
        let generation = generation
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: connection.settings.requestTimeout) { [self] in
            guard generation == self.generation, case .awaitingResponse = phase, let backend else { return }
            self.backend = nil
            _ = connection.runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
            answer(.timeout)
        }
    }

    /// Stops the current attempt: no timer, no partner; the upstream stream is reset if still open.
    private func endAttempt() {
        generation &+= 1
        timeout?.cancel()
        timeout = nil
        held.removeAll()
        if let upstream {
            self.upstream = nil
            upstream.detach()
        }
    }

    /// Answers the stream itself; nothing of a response was sent yet.
    private func answer(_ answer: HTTPProxyAnswer) {
        guard let context else { return }
        if let backend {
            self.backend = nil
            _ = connection.runtime.attemptFinished(backend, outcome: .cancelled, isRetry: attemptIsRetry)
        }
        endAttempt()
        phase = .done
        connection.runtime.proxyAnswered(answer)
        for payload in H2Forwarding.answer(answer, listener: connection.listenerName, grpc: grpc) {
            context.write(wrapOutboundOut(payload), promise: nil)
        }
        context.flush()
        if pendingRead {
            // The rest of the request is read and dropped.
            pendingRead = false
            context.read()
        }
    }

    // MARK: - Upstream side (called by H2UpstreamStream)

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard let context else { return }
        switch phase {
        case .awaitingResponse:
            let code = headers.headers.first(name: ":status").flatMap { Int($0) } ?? 0
            if (100..<200).contains(code) {
                // Interim responses pass as they are.
                context.write(wrapOutboundOut(.headers(headers)), promise: nil)
                return
            }
            timeout?.cancel()
            timeout = nil
            status = code
            latency = .now() - attemptStarted
            phase = .responding
            context.write(wrapOutboundOut(.headers(.init(headers: H2Forwarding.forward(headers.headers), endStream: headers.endStream))), promise: nil)
        case .responding:
            context.write(wrapOutboundOut(.headers(.init(headers: H2Forwarding.forward(headers.headers), endStream: headers.endStream))), promise: nil)
        default:
            return
        }
        if headers.endStream { responseEnded() }
    }

    func upstreamData(_ data: HTTP2Frame.FramePayload.Data) {
        guard case .responding = phase, let context else { return }
        context.write(wrapOutboundOut(.data(data)), promise: nil)
        if data.endStream { responseEnded() }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    /// Counts the response, then flushes it: the flush may end the stream (and close its channel) at once.
    private func responseEnded() {
        phase = .done
        if let backend {
            self.backend = nil
            _ = connection.runtime.attemptFinished(backend, outcome: .response(status: status, latency: latency), isRetry: attemptIsRetry)
        }
        context?.flush()
    }

    /// The upstream stream closed (ended both ways, reset, or its connection went away).
    func upstreamClosed() {
        upstream = nil
        switch phase {
        case .awaitingResponse:
            if let backend {
                self.backend = nil
                _ = connection.runtime.attemptFinished(backend, outcome: .failed, isRetry: attemptIsRetry)
            }
            answer(.upstreamFailed)
        case .responding:
            // Cut short: the client learns it from a reset of its stream.
            if let backend {
                self.backend = nil
                _ = connection.runtime.attemptFinished(
                    backend, outcome: .response(status: status, latency: latency), isRetry: attemptIsRetry)
            }
            phase = .done
            context?.close(promise: nil)
        case .done:
            // The response is complete; a request still streaming has nowhere to go.
            if !requestEnded { context?.close(promise: nil) }
        case .awaitingRequest, .connecting:
            break
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension H2StreamProxy: Sendable {}
