import NIOCore
import WeftCore

/// Answers DNS queries arriving on a UDP socket.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let state: DNSServerState
    private var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
    private var isActive = true

    init(state: DNSServerState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let zone = state.zone
        let disposition = envelope.data.withUnsafeReadableBytes { bytes in
            DNSQueryHandler.handle(bytes, zone: zone, canForward: state.forwarder != nil, random: &random)
        }
        switch disposition {
        case .drop:
            return
        case .respond(let response, let limit):
            send(response, limit: limit, to: envelope.remoteAddress, context: context, flush: false)
        case .forward(let query):
            guard let forwarder = state.forwarder else { return }
            let limit = DNSQueryHandler.responseLimit(for: query, overTCP: false)
            let client = envelope.remoteAddress
            forwarder.resolve(query).hop(to: context.eventLoop).assumeIsolated().whenSuccess { upstream in
                guard self.isActive else { return }
                self.send(DNSQueryHandler.relay(upstream, to: query), limit: limit, to: client, context: context, flush: true)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket reports ICMP errors for earlier sends here; the socket itself is fine.
    }

    private func send(_ response: DNSMessage, limit: Int, to address: SocketAddress, context: ChannelHandlerContext, flush: Bool) {
        let buffer = context.channel.allocator.buffer(bytes: response.encoded(maximumLength: limit))
        let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
        if flush {
            context.writeAndFlush(wrapOutboundOut(envelope), promise: nil)
        } else {
            context.write(wrapOutboundOut(envelope), promise: nil)
        }
    }
}

/// Answers DNS queries on one TCP connection: several per connection, each answered when ready (forwarded
/// ones may overtake, as RFC 7766 §6.2.1.1 allows); closed when idle.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let state: DNSServerState
    private var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
    private var isActive = true

    init(state: DNSServerState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let zone = state.zone
        let disposition = message.withUnsafeReadableBytes { bytes in
            DNSQueryHandler.handle(bytes, zone: zone, canForward: state.forwarder != nil, random: &random)
        }
        switch disposition {
        case .drop:
            return
        case .respond(let response, _):
            send(response, context: context, flush: false)
        case .forward(let query):
            guard let forwarder = state.forwarder else { return }
            forwarder.resolve(query).hop(to: context.eventLoop).assumeIsolated().whenSuccess { upstream in
                guard self.isActive else { return }
                self.send(DNSQueryHandler.relay(upstream, to: query), context: context, flush: true)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func send(_ response: DNSMessage, context: ChannelHandlerContext, flush: Bool) {
        var buffer = context.channel.allocator.buffer(capacity: 512)
        buffer.writeDNSFrame(response.encoded(maximumLength: DNSMessage.maximumLength - 2))
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }
}
