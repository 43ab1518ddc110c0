import NIOCore

/// The first handler of an `http` listener's connection: looks at the connection's first bytes only.
/// A connection that starts with the HTTP/2 connection preface (h2c with prior knowledge, as gRPC
/// clients and `h2load` send in cleartext) is switched to `H2ProxyConnection`; any other goes to
/// the `HTTPProxyHandler` after it unchanged. Either way this handler removes itself, so HTTP/1.1
/// requests after the first read pass nothing extra.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    enum Verdict: Equatable {
        /// The bytes so far are a proper prefix of the preface: wait for more.
        case undecided
        case http1
        case http2
    }

    /// What `bytes` (the connection's first bytes) start with.
    static func classify(_ bytes: ByteBuffer) -> Verdict {
        let count = min(bytes.readableBytes, preface.count)
        let matches = bytes.withUnsafeReadableBytes { p in
            (0..<count).allSatisfy { p[$0] == preface[$0] }
        }
        if !matches { return .http1 }
        return count == preface.count ? .http2 : .undecided
    }

    private let http1: HTTPProxyHandler
    private let runtime: ListenerRuntime
    private let connector: BackendConnector
    private var buffered: ByteBuffer?

    init(http1: HTTPProxyHandler, runtime: ListenerRuntime, connector: BackendConnector) {
        self.http1 = http1
        self.runtime = runtime
        self.connector = connector
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var previous = buffered {
            buffered = nil
            previous.writeBuffer(&bytes)
            bytes = previous
        }
        switch Self.classify(bytes) {
        case .undecided:
            buffered = bytes
        case .http1:
            context.fireChannelRead(wrapInboundOut(bytes))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        case .http2:
            switchToHTTP2(context: context, bytes: bytes)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, let bytes = buffered {
            // The client stopped inside what could have been the preface: the HTTP/1.1 handler gets
            // the bytes and the half-close (an incomplete head: it closes the connection).
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func switchToHTTP2(context: ChannelHandlerContext, bytes: ByteBuffer) {
        guard let admission = http1.handOver() else {
            context.close(promise: nil)
            return
        }
        do {
            let pipeline = context.pipeline.syncOperations
            pipeline.removeHandler(http1, promise: nil)
            try H2ProxyConnection.configure(
                context.channel, runtime: runtime, connector: connector,
                connection: admission.connection, settings: admission.settings)
        } catch {
            runtime.closed(connection: admission.connection, backend: nil, failed: true, bytesIn: 0, bytesOut: 0)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ProtocolSniffer: Sendable {}
