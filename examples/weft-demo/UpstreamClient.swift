#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete answer from the upstream.
struct UpstreamAnswer: Sendable {
    var status: HTTPResponseStatus
    var body: ByteBuffer
}

/// Why an upstream call failed, beyond the connect errors NIO reports itself.
struct UpstreamFailure: Error, CustomStringConvertible {
    var description: String
}

/// Calls `GET /` on the upstream for one inbound request.
///
/// One connection per call, on the inbound request's event loop, with `Connection: close`; the upstream
/// ends the exchange by closing. Pooling keep-alive connections per event loop is a later improvement.
/// Names are resolved through Weft's DNS when the replica was given one (`WEFT_DNS`), else by NIO's
/// default resolver (getaddrinfo).
enum UpstreamClient {
    /// Largest upstream body accepted.
    static let maximumBodyBytes = 1 << 20

    static func get(
        _ target: UpstreamTarget,
        resolver: DemoResolver?,
        on eventLoop: EventLoop,
        connectTimeout: TimeAmount,
        responseTimeout: TimeAmount
    ) -> EventLoopFuture<UpstreamAnswer> {
        guard let resolver, !IPLiteral.isValid(target.host) else {
            return get(target, connectingTo: target.host, on: eventLoop, connectTimeout: connectTimeout, responseTimeout: responseTimeout)
        }
        return resolver.resolve(target.host, on: eventLoop).flatMap { address in
            get(target, connectingTo: address, on: eventLoop, connectTimeout: connectTimeout, responseTimeout: responseTimeout)
        }
    }

    private static func get(
        _ target: UpstreamTarget,
        connectingTo host: String,
        on eventLoop: EventLoop,
        connectTimeout: TimeAmount,
        responseTimeout: TimeAmount
    ) -> EventLoopFuture<UpstreamAnswer> {
        let promise = eventLoop.makePromise(of: UpstreamAnswer.self)
        var headers = HTTPHeaders()
        headers.add(name: "host", value: target.description)
        headers.add(name: "user-agent", value: "weft-demo")
        headers.add(name: "accept", value: "application/json")
        headers.add(name: "connection", value: "close")
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)

        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamExchangeHandler(
                            request: request, target: target, responseTimeout: responseTimeout, promise: promise
                        )
                    )
                }
            }
            .connect(host: host, port: target.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Only the connection that won happy eyeballs sends the request. We are on its event
                    // loop: if it is still active here, its pipeline is intact and receives `Start`.
                    guard channel.isActive else {
                        promise.fail(UpstreamFailure(description: "\(target) closed the connection before answering"))
                        return
                    }
                    channel.pipeline.fireUserInboundEventTriggered(UpstreamExchangeHandler.Start())
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    promise.fail(error)  // ignored if the handler already failed it
                }
            }
        return promise.futureResult
    }

    /// One line for the `error` field of the embedded upstream object.
    static func describe(_ error: Error, target: UpstreamTarget) -> String {
        switch error {
        case let failure as UpstreamFailure:
            return failure.description
        case ChannelError.connectTimeout(let timeout):
            return "connecting to \(target) timed out after \(timeout.nanoseconds / 1_000_000) ms"
        case let error as NIOConnectionError:
            if let dnsError = error.dnsAError ?? error.dnsAAAAError {
                return "cannot resolve \(target.host): \(dnsError)"
            }
            if let first = error.connectionErrors.first {
                return "cannot connect to \(target): \(describe(first.error, target: target))"
            }
            return "cannot connect to \(target): no address found for \(target.host)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        default:
            return "\(error)"
        }
    }
}

/// Sends the request when told to `Start` and collects one response into the promise.
///
/// Connection attempts that lose the happy-eyeballs race never receive `Start`: they send nothing and
/// leave the promise alone.
final class UpstreamExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    /// Fired by `UpstreamClient` on the connected channel.
    struct Start: Sendable {}

    private let request: HTTPRequestHead
    private let target: UpstreamTarget
    private let responseTimeout: TimeAmount
    private let promise: EventLoopPromise<UpstreamAnswer>
    private var status: HTTPResponseStatus?
    private var body: ByteBuffer?
    private var timeout: Scheduled<Void>?
    private var isStarted = false
    private var isFinished = false

    init(
        request: HTTPRequestHead,
        target: UpstreamTarget,
        responseTimeout: TimeAmount,
        promise: EventLoopPromise<UpstreamAnswer>
    ) {
        self.request = request
        self.target = target
        self.responseTimeout = responseTimeout
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Start else { return context.fireUserInboundEventTriggered(event) }
        guard !isStarted, !isFinished else { return }
        isStarted = true
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: responseTimeout) {
            self.finish(context: context, .failure(UpstreamFailure(
                description: "\(self.target) did not answer within \(self.responseTimeout.nanoseconds / 1_000_000) ms"
            )))
        }
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard isStarted, !isFinished else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(var chunk):
            if chunk.readableBytes + (body?.readableBytes ?? 0) > UpstreamClient.maximumBodyBytes {
                return finish(context: context, .failure(UpstreamFailure(
                    description: "\(target) answered with more than \(UpstreamClient.maximumBodyBytes) bytes"
                )))
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let status else {
                return finish(context: context, .failure(UpstreamFailure(description: "\(target) sent no response head")))
            }
            finish(context: context, .success(UpstreamAnswer(
                status: status, body: body ?? context.channel.allocator.buffer(capacity: 0)
            )))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isStarted {
            finish(context: context, .failure(UpstreamFailure(
            description: "\(target) closed the connection before answering"
            )))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard isStarted else { return context.close(promise: nil) }
        finish(context: context, .failure(UpstreamFailure(
            description: "talking to \(target) failed: \(UpstreamClient.describe(error, target: target))"
        )))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    private func finish(context: ChannelHandlerContext, _ result: Result<UpstreamAnswer, Error>) {
        guard !isFinished else { return }
        isFinished = true
        timeout?.cancel()
        timeout = nil
        promise.completeWith(result)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamExchangeHandler: Sendable {}
