import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import NIOTLS
import WeftPKI

/// The first handler of an outgoing tunnel stream: sends the CONNECT and, when the destination node
/// answers 200, replaces itself with a `TunnelStreamAdapter` and succeeds `established` with the
/// stream channel, ready to be spliced. Any other answer, a reset, or the deadline fails it with a
/// `TunnelRefusal` and closes the stream.
final class TunnelConnectClient: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let request: HPACKHeaders
    private let established: EventLoopPromise<any Channel>
    private let deadline: TimeAmount
    private var sent = false
    private var done = false
    private var timer: Scheduled<Void>?

    init(authority: String, source: String?, deadline: TimeAmount, established: EventLoopPromise<any Channel>) {
        self.request = TunnelProtocol.connectRequest(authority: authority, source: source)
        self.deadline = deadline
        self.established = established
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let channel = context.channel
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: deadline) { [self] in
            fail(TunnelRefusal(status: 0, reason: "no answer to CONNECT within \(deadline.nanoseconds / 1_000_000) ms"))
            channel.close(promise: nil)
        }
        let headers = HTTP2Frame.FramePayload.Headers(headers: request, endStream: false)
        // A connection that is going away (GOAWAY sent or received) refuses new streams here, at once:
        // fail now rather than at the deadline, and have the pool retire the connection.
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenFailure { [self] error in
            guard !done else { return }
            done = true
            timer?.cancel()
            established.fail(TunnelConnectionClosing(reason: "\(error)"))
            channel.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.headers(headers)), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        guard case .headers(let headers) = unwrapInboundIn(data) else { return }
        let status = headers.headers.first(name: ":status").flatMap { Int($0) } ?? 0
        guard status == 200, !headers.endStream else {
            let reason = headers.headers.first(name: TunnelProtocol.reasonHeader) ?? "no reason given"
            fail(TunnelRefusal(status: status, reason: reason))
            context.close(promise: nil)
            return
        }
        done = true
        timer?.cancel()
        do {
            try context.pipeline.syncOperations.addHandler(TunnelStreamAdapter(), position: .after(self))
        } catch {
            established.fail(error)
            context.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        established.succeed(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(TunnelRefusal(status: 0, reason: "the stream closed before the destination answered"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(TunnelRefusal(status: 0, reason: "\(error)"))
        context.close(promise: nil)
    }

    private func fail(_ refusal: TunnelRefusal) {
        guard !done else { return }
        done = true
        timer?.cancel()
        established.fail(refusal)
    }
}

@available(*, unavailable)
extension TunnelConnectClient: Sendable {}

/// Waits for the TLS handshake of a new tunnel connection, checks that the peer is the node it was
/// dialled for (its certificate already chained to the trust bundle) and negotiated HTTP/2, and only
/// then sets up HTTP/2 — so nothing, not even the preface, goes to a wrong peer.
final class TunnelClientHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let expected: SPIFFEID
    private let maxConcurrentStreams: Int
    private let ready: EventLoopPromise<NIOHTTP2Handler.StreamMultiplexer>
    private let goingAway: () -> Void
    private var finished = false

    /// `goingAway` is called (on the connection's event loop) when the peer sends GOAWAY.
    init(expected: SPIFFEID, maxConcurrentStreams: Int, ready: EventLoopPromise<NIOHTTP2Handler.StreamMultiplexer>,
         goingAway: @escaping () -> Void = {}) {
        self.expected = expected
        self.maxConcurrentStreams = maxConcurrentStreams
        self.ready = ready
        self.goingAway = goingAway
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        do {
            let handler = try context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            guard let certificate = handler.peerCertificate, let peer = try PeerIdentity.spiffeID(of: certificate) else {
                throw TunnelPeerError(reason: "the tunnel peer presented no SPIFFE ID (expected \(expected))")
            }
            guard peer == expected else {
                throw TunnelPeerError(reason: "the tunnel peer is \(peer), not \(expected)")
            }
            guard negotiated == "h2" else {
                throw TunnelPeerError(reason: "the tunnel peer \(peer) did not negotiate HTTP/2")
            }
            try context.pipeline.syncOperations.addHandler(FlushCoalescer())
            let multiplexer = try context.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .client,
                connectionConfiguration: TunnelProtocol.connectionConfiguration(maxConcurrentStreams: maxConcurrentStreams),
                streamConfiguration: TunnelProtocol.streamConfiguration,
                inboundStreamInitializer: { stream in stream.close() })
            try context.pipeline.syncOperations.addHandler(TunnelGoAwayWatch(goingAway: goingAway))
            finished = true
            ready.succeed(multiplexer)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            finish(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(TunnelPeerError(reason: "the tunnel connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(TunnelPeerError(reason: "TLS handshake with the tunnel peer failed: \(error)"))
        context.close(promise: nil)
    }

    private func finish(_ error: any Error) {
        guard !finished else { return }
        finished = true
        ready.fail(error)
    }
}

@available(*, unavailable)
extension TunnelClientHandshake: Sendable {}

/// Sits behind the HTTP/2 handler of a tunnel connection (which passes connection-level frames on)
/// and reports the peer's GOAWAY: the peer takes no stream newer than those it has, so the pool must
/// stop handing out the connection. Without it, streams sent there were never answered.
final class TunnelGoAwayWatch: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let goingAway: () -> Void
    private var reported = false

    init(goingAway: @escaping () -> Void) {
        self.goingAway = goingAway
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload, !reported {
            reported = true
            goingAway()
        }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension TunnelGoAwayWatch: Sendable {}
