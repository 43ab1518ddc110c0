import NIOCore
import NIOHTTP1

/// What every connection handler of one `weft-demo` process shares.
struct DemoService: Sendable {
    var configuration: DemoConfiguration
    var answers: DemoAnswers
    /// Resolves `UPSTREAM` names through Weft's DNS; nil leaves them to the system resolver.
    var resolver: DemoResolver?
}

/// Serves `GET /`, `GET /healthz` and 404s on one connection.
///
/// Sits behind `HTTPServerPipelineHandler`, which hands over one request at a time and holds back pipelined
/// ones until this handler has written the previous response's `.end`; that is what makes delayed and
/// upstream-dependent answers pipelining-safe.
final class DemoHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead)
        /// The request is complete; its answer waits for the delay or the upstream.
        case answering(HTTPRequestHead)
    }

    private let service: DemoService
    private var state = State.idle
    private var dice = FailureDice()
    private var isActive = true
    private var pendingDelay: Scheduled<Void>?

    init(service: DemoService) {
        self.service = service
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            state = .receiving(head)
        case .body:
            break  // request bodies are accepted and ignored
        case .end:
            guard case .receiving(let head) = state else { return }
            route(context: context, head: head)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        pendingDelay?.cancel()
        pendingDelay = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.firstIndex(of: "?").map { head.uri[..<$0] } ?? head.uri[...]
        switch path {
        case "/":
            guard head.method == .GET else { return refuseMethod(context: context, head: head) }
            state = .answering(head)
            let delay = service.configuration.delayMilliseconds
            if delay > 0 {
                pendingDelay = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                    self.pendingDelay = nil
                    self.answerRoot(context: context, head: head)
                }
            } else {
                answerRoot(context: context, head: head)
            }
        case "/healthz":
            guard head.method == .GET else { return refuseMethod(context: context, head: head) }
            respond(context: context, to: head, status: .ok,
                    headers: service.answers.healthyHeaders, body: service.answers.healthy)
        default:
            let body = context.channel.allocator.buffer(string: DemoAnswers.notFound(path: path))
            respond(context: context, to: head, status: .notFound,
                    headers: DemoAnswers.headers(contentType: DemoAnswers.json, length: body.readableBytes),
                    body: body)
        }
    }

    private func refuseMethod(context: ChannelHandlerContext, head: HTTPRequestHead) {
        respond(context: context, to: head, status: .methodNotAllowed,
                headers: service.answers.methodNotAllowedHeaders, body: service.answers.methodNotAllowed)
    }

    private func answerRoot(context: ChannelHandlerContext, head: HTTPRequestHead) {
        guard isActive else { return }
        let answers = service.answers
        if dice.roll(service.configuration.failRate) {
            return respond(context: context, to: head, status: .internalServerError,
                           headers: answers.injectedFailureHeaders, body: answers.injectedFailure)
        }
        guard let upstream = service.configuration.upstream else {
            return respond(context: context, to: head, status: .ok, headers: answers.okHeaders, body: answers.ok)
        }
        UpstreamClient.get(
            upstream,
            resolver: service.resolver,
            on: context.eventLoop,
            connectTimeout: .milliseconds(service.configuration.upstreamConnectTimeoutMilliseconds),
            responseTimeout: .milliseconds(service.configuration.upstreamResponseTimeoutMilliseconds)
        ).assumeIsolated().whenComplete { result in
            guard self.isActive else { return }
            self.answerRoot(context: context, head: head, upstream: upstream, result: result)
        }
    }

    private func answerRoot(
        context: ChannelHandlerContext,
        head: HTTPRequestHead,
        upstream: UpstreamTarget,
        result: Result<UpstreamAnswer, Error>
    ) {
        let allocator = context.channel.allocator
        let failure: (message: String, status: Int?)
        switch result {
        case .success(let answer) where (200..<300).contains(answer.status.code):
            if JSONText.isValidDocument(answer.body.readableBytesView) {
                let body = service.answers.withUpstream(answer.body, allocator: allocator)
                return respond(context: context, to: head, status: .ok,
                               headers: DemoAnswers.headers(contentType: DemoAnswers.json, length: body.readableBytes),
                               body: body)
            }
            failure = ("upstream answered \(answer.status.code) with a body that is not JSON", Int(answer.status.code))
        case .success(let answer):
            failure = ("upstream answered \(answer.status.code) \(answer.status.reasonPhrase)", Int(answer.status.code))
        case .failure(let error):
            failure = (UpstreamClient.describe(error, target: upstream), nil)
        }
        let body = allocator.buffer(
            string: service.answers.withUpstreamFailure(failure.message, target: upstream, status: failure.status)
        )
        respond(context: context, to: head, status: .badGateway,
                headers: DemoAnswers.headers(contentType: DemoAnswers.json, length: body.readableBytes), body: body)
    }

    private func respond(
        context: ChannelHandlerContext,
        to request: HTTPRequestHead,
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer
    ) {
        let keepAlive = request.isKeepAlive
        var headers = headers
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if request.version.major == 1 && request.version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        state = .idle
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension DemoHTTPHandler: Sendable {}
