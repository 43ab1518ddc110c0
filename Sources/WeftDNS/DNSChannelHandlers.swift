import NIOCore
import WeftCore

/// Answers DNS queries arriving on a UDP socket.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let state: DNSServerState
    private var responder = DNSResponder()
    private var isActive = true
    /// The zone as it was when this batch of reads began: read once per batch, not per datagram.
    private var zone: ClusterZone?

    init(state: DNSServerState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let zone = self.zone ?? state.zone
        self.zone = zone
        let outcome = envelope.data.withUnsafeReadableBytes { bytes in
            responder.handle(bytes, zone: zone, canForward: state.forwarder != nil, overTCP: false)
        }
        switch outcome {
        case .drop:
            return
        case .respond(let bytes):
            send(bytes, to: envelope.remoteAddress, context: context, flush: false)
        case .forward(let query, let limit):
            guard let forwarder = state.forwarder else { return }
            let client = envelope.remoteAddress
            forwarder.resolve(query).hop(to: context.eventLoop).assumeIsolated().whenSuccess { upstream in
                guard self.isActive else { return }
                let response = DNSQueryHandler.relay(upstream, to: query).encoded(maximumLength: limit)
                self.send(response, to: client, context: context, flush: true)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        zone = nil
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket reports ICMP errors for earlier sends here; the socket itself is fine.
    }

    private func send(_ bytes: [UInt8], to address: SocketAddress, context: ChannelHandlerContext, flush: Bool) {
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
        if flush {
            context.writeAndFlush(wrapOutboundOut(envelope), promise: nil)
        } else {
            context.write(wrapOutboundOut(envelope), promise: nil)
        }
    }
}

/// Answers DNS queries on one TCP connection: several per connection, each answered when ready (forwarded
/// ones may overtake, as RFC 7766 §6.2.1.1 allows); closed when idle; not read while its answers wait.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let state: DNSServerState
    private var responder = DNSResponder(capacity: 64)
    private var isActive = true

    init(state: DNSServerState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let zone = state.zone
        let outcome = message.withUnsafeReadableBytes { bytes in
            responder.handle(bytes, zone: zone, canForward: state.forwarder != nil, overTCP: true)
        }
        switch outcome {
        case .drop:
            return
        case .respond(let bytes):
            send(bytes, context: context, flush: false)
        case .forward(let query, _):
            guard let forwarder = state.forwarder else { return }
            forwarder.resolve(query).hop(to: context.eventLoop).assumeIsolated().whenSuccess { upstream in
                guard self.isActive else { return }
                self.send(DNSQueryHandler.relay(upstream, to: query).encoded(maximumLength: DNSMessage.maximumLength - 2), context: context, flush: true)
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

    /// A client that sends queries but does not read the answers stops being read from, so its answers
    /// cannot pile up in memory.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
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

    private func send(_ bytes: [UInt8], context: ChannelHandlerContext, flush: Bool) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 2)
        buffer.writeDNSFrame(bytes)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }
}
