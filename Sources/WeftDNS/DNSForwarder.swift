import Logging
import NIOCore
import NIOPosix
import WeftCore

/// Resolves names outside the cluster zone through upstream servers, over UDP (TCP when an answer comes
/// back truncated), trying each upstream in turn when one times out or fails, and caching answers by
/// their TTLs (negative ones by their SOA). All state lives on one event loop.
final class DNSForwarder: @unchecked Sendable {
    let eventLoop: any EventLoop
    let upstreams: [SocketAddress]
    private let attemptTimeout: TimeAmount
    private let logger: Logger
    private var channels: [NIOBSDSocket.ProtocolFamily: any Channel] = [:]
    private var pending: [UInt16: Pending] = [:]
    private var cache: DNSCache
    private var random = SystemRandomNumberGenerator()
    /// Queries waiting for an upstream at once, beyond which new ones fail at once (SERVFAIL).
    static let maximumPending = 4096

    private struct Pending {
        var question: DNSQuestion
        var upstream: SocketAddress
        var attempt: Int
        var promise: EventLoopPromise<DNSMessage?>
        var timeout: Scheduled<Void>
        var query: DNSMessage
    }

    private init(eventLoop: any EventLoop, upstreams: [SocketAddress], attemptTimeout: TimeAmount, cacheCapacity: Int, logger: Logger) {
        self.eventLoop = eventLoop
        self.upstreams = upstreams
        self.attemptTimeout = attemptTimeout
        self.cache = DNSCache(capacity: cacheCapacity)
        self.logger = logger
    }

    /// A forwarder with one unbound UDP socket per address family its upstreams use.
    static func start(
        upstreams: [SocketAddress], on eventLoop: any EventLoop, attemptTimeout: TimeAmount = .seconds(2),
        cacheCapacity: Int = 10_000, logger: Logger
    ) async throws -> DNSForwarder {
        let forwarder = DNSForwarder(eventLoop: eventLoop, upstreams: upstreams, attemptTimeout: attemptTimeout,
                                     cacheCapacity: cacheCapacity, logger: logger)
        var families: [NIOBSDSocket.ProtocolFamily: any Channel] = [:]
        for upstream in upstreams where families[upstream.protocol] == nil {
            let any = upstream.protocol == .inet6 ? "::" : "0.0.0.0"
            families[upstream.protocol] = try await DatagramBootstrap(group: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UpstreamResponseHandler(forwarder: forwarder))
                    }
                }
                .bind(host: any, port: 0).get()
        }
        let bound = families
        try await eventLoop.submit { forwarder.channels = bound }.get()
        return forwarder
    }

    func close() async {
        let channels = try? await eventLoop.submit { self.channels.values.map { $0 } }.get()
        for channel in channels ?? [] {
            try? await channel.close()
        }
    }

    /// The upstream answer to the single question of `query`, nil when every upstream failed.
    func resolve(_ query: DNSMessage) -> EventLoopFuture<DNSMessage?> {
        eventLoop.flatSubmit {
            let promise = self.eventLoop.makePromise(of: DNSMessage?.self)
            self.start(query, promise: promise)
            return promise.futureResult
        }
    }

    private func now() -> Double {
        Double(NIODeadline.now().uptimeNanoseconds) / 1e9
    }

    private func start(_ query: DNSMessage, promise: EventLoopPromise<DNSMessage?>) {
        guard let question = query.questions.first else { return promise.succeed(nil) }
        if let cached = cache.lookup(question, now: now()) {
            var answer = DNSMessage(id: query.id, questions: [question], answers: cached.answers,
                                    authorities: cached.authorities, additionals: cached.additionals)
            answer.flags.isResponse = true
            answer.flags.recursionAvailable = true
            answer.responseCode = cached.responseCode
            return promise.succeed(answer)
        }
        guard pending.count < Self.maximumPending else {
            logger.warning("too many queries waiting for upstreams; answering SERVFAIL", metadata: ["pending": "\(pending.count)"])
            return promise.succeed(nil)
        }
        var upstreamQuery = DNSMessage(id: 0, questions: [question], edns: EDNS(udpPayloadSize: UInt16(DNSQueryHandler.maximumUDPPayload)))
        upstreamQuery.flags.recursionDesired = true
        upstreamQuery.flags.checkingDisabled = query.flags.checkingDisabled
        send(upstreamQuery, attempt: 0, promise: promise)
    }

    /// Sends `query` to upstream number `attempt`; past the last upstream the answer is nil.
    private func send(_ query: DNSMessage, attempt: Int, promise: EventLoopPromise<DNSMessage?>) {
        guard attempt < upstreams.count else { return promise.succeed(nil) }
        let upstream = upstreams[attempt]
        guard let channel = channels[upstream.protocol] else { return send(query, attempt: attempt + 1, promise: promise) }
        var query = query
        repeat { query.id = UInt16.random(in: 0...UInt16.max, using: &random) } while pending[query.id] != nil
        let id = query.id
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: attemptTimeout) {
            guard let timedOut = self.pending.removeValue(forKey: id) else { return }
            self.logger.debug("upstream timed out", metadata: ["upstream": "\(upstream)", "name": "\(timedOut.question.name)"])
            self.send(timedOut.query, attempt: attempt + 1, promise: timedOut.promise)
        }
        pending[id] = Pending(question: query.questions[0], upstream: upstream, attempt: attempt, promise: promise, timeout: timeout, query: query)
        let buffer = channel.allocator.buffer(bytes: query.encoded())
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: upstream, data: buffer)).whenFailure { error in
            guard let failed = self.pending.removeValue(forKey: id) else { return }
            failed.timeout.cancel()
            self.logger.debug("cannot send to upstream", metadata: ["upstream": "\(upstream)", "error": "\(error)"])
            self.send(failed.query, attempt: attempt + 1, promise: failed.promise)
        }
    }

    /// An answer arrived on a UDP socket. Anything that is not the answer to a pending query, from the
    /// upstream it was sent to, for the question asked, is ignored (spoofing defence).
    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard let header = envelope.data.withUnsafeReadableBytes({ DNSHeader($0) }), header.flags.isResponse,
              let waiting = pending[header.id], waiting.upstream == envelope.remoteAddress else { return }
        guard let response = try? envelope.data.withUnsafeReadableBytes({ try DNSMessage(decoding: $0) }),
              response.questions.count == 1, response.questions[0] == waiting.question,
              response.questions[0].type == waiting.question.type else { return }
        pending[header.id] = nil
        waiting.timeout.cancel()
        if response.flags.isTruncated {
            return queryOverTCP(waiting)
        }
        finish(response, of: waiting)
    }

    private func finish(_ response: DNSMessage, of waiting: Pending) {
        switch response.responseCode {
        case .serverFailure, .refused, .notImplemented, .formatError:
            logger.debug("upstream failed; trying the next", metadata: ["upstream": "\(waiting.upstream)", "rcode": "\(response.responseCode)"])
            send(waiting.query, attempt: waiting.attempt + 1, promise: waiting.promise)
        default:
            cache.store(response, for: waiting.question, now: now())
            waiting.promise.succeed(response)
        }
    }

    /// Asks the same upstream again over TCP (its UDP answer was truncated).
    private func queryOverTCP(_ waiting: Pending) {
        let answer = eventLoop.makePromise(of: ByteBuffer.self)
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(attemptTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FirstFrameHandler(answer: answer))
                }
            }
            .connect(to: waiting.upstream)
        connected.whenSuccess { channel in
            var frame = channel.allocator.buffer(capacity: 512)
            frame.writeDNSFrame(waiting.query.encoded())
            channel.writeAndFlush(frame, promise: nil)
            let deadline = channel.eventLoop.scheduleTask(in: self.attemptTimeout) { answer.fail(ChannelError.connectTimeout(self.attemptTimeout)) }
            answer.futureResult.whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        }
        connected.whenFailure { answer.fail($0) }
        answer.futureResult.hop(to: eventLoop).assumeIsolated().whenComplete { result in
            guard case .success(let buffer) = result,
                  let response = try? buffer.withUnsafeReadableBytes({ try DNSMessage(decoding: $0) }),
                  response.id == waiting.query.id, response.questions.first == waiting.question else {
                return self.send(waiting.query, attempt: waiting.attempt + 1, promise: waiting.promise)
            }
            self.finish(response, of: waiting)
        }
    }
}

/// Hands the forwarder's UDP answers to it.
private final class UpstreamResponseHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let forwarder: DNSForwarder

    init(forwarder: DNSForwarder) {
        self.forwarder = forwarder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        forwarder.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: the pending query times out and moves on.
    }
}

/// Completes `answer` with the first DNS-over-TCP message.
private final class FirstFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let answer: EventLoopPromise<ByteBuffer>

    init(answer: EventLoopPromise<ByteBuffer>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answer.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
