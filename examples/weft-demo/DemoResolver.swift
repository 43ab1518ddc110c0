import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftCore

/// Resolves upstream names through Weft's DNS server (`WEFT_DNS`) with Weft's own DNS codec: the search
/// domains first for a short name (as resolv.conf's `ndots:5` would), then the name as given; answers are
/// cached for their TTL.
final class DemoResolver: Sendable {
    private let server: SocketAddress
    private let searchDomains: [String]
    private let cache = NIOLockedValueBox([String: (address: String, expires: NIODeadline)]())
    static let queryTimeout = TimeAmount.seconds(1)

    init(server: UpstreamTarget, searchDomains: [String]) throws {
        self.server = try SocketAddress(ipAddress: server.host, port: server.port)
        self.searchDomains = searchDomains
    }

    /// An IPv4 address for `host`, or a failure that names the server and the names tried.
    func resolve(_ host: String, on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        let now = NIODeadline.now()
        if let cached = cache.withLockedValue({ $0[host] }), cached.expires > now {
            return eventLoop.makeSucceededFuture(cached.address)
        }
        let candidates: [String]
        if host.hasSuffix(".") {
            candidates = [host]
        } else if host.filter({ $0 == "." }).count < 5 {
            candidates = searchDomains.map { "\(host).\($0)" } + [host]
        } else {
            candidates = [host] + searchDomains.map { "\(host).\($0)" }
        }
        return attempt(candidates[...], host: host, on: eventLoop)
    }

    private func attempt(_ candidates: ArraySlice<String>, host: String, on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        guard let name = candidates.first else {
            return eventLoop.makeFailedFuture(UpstreamFailure(description: "cannot resolve \(host): no address at \(server.ipAddress ?? "?"):\(server.port ?? 0)"))
        }
        return query(name, on: eventLoop).flatMap { found in
            guard let (address, ttl) = found else { return self.attempt(candidates.dropFirst(), host: host, on: eventLoop) }
            let expires = NIODeadline.now() + .seconds(Int64(ttl))
            self.cache.withLockedValue { $0[host] = (address, expires) }
            return eventLoop.makeSucceededFuture(address)
        }
    }

    /// The first A record for `name` and its TTL; nil for NXDOMAIN or no address.
    private func query(_ name: String, on eventLoop: any EventLoop) -> EventLoopFuture<(String, UInt32)?> {
        let question: DNSQuestion
        do {
            question = DNSQuestion(name: try DNSName(name), type: .a)
        } catch {
            return eventLoop.makeSucceededFuture(nil)
        }
        var flags = DNSFlags()
        flags.recursionDesired = true
        let message = DNSMessage(id: UInt16.random(in: 0...UInt16.max), flags: flags, questions: [question])
        let answer = eventLoop.makePromise(of: DNSMessage.self)
        let server = self.server
        DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSAnswerHandler(id: message.id, server: server, answer: answer))
                }
            }
            .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let timeout = eventLoop.scheduleTask(in: Self.queryTimeout) {
                        answer.fail(UpstreamFailure(description: "DNS server \(server.ipAddress ?? "?"):\(server.port ?? 0) did not answer for \(name)"))
                    }
                    answer.futureResult.whenComplete { _ in
                        timeout.cancel()
                        channel.close(promise: nil)
                    }
                    let bytes = channel.allocator.buffer(bytes: message.encoded())
                    channel.writeAndFlush(AddressedEnvelope(remoteAddress: server, data: bytes)).whenFailure { answer.fail($0) }
                case .failure(let error):
                    answer.fail(error)
                }
            }
        return answer.futureResult.flatMapThrowing { response in
            switch response.responseCode {
            case .noError, .nameError:
                for record in response.answers {
                    if case .a(let address) = record.data { return (address.description, record.ttl) }
                }
                return nil
            default:
                throw UpstreamFailure(description: "DNS server answered \(response.responseCode) for \(name)")
            }
        }
    }
}

/// Completes `answer` with the response from `server` that carries `id`; anything else is ignored.
private final class DNSAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let id: UInt16
    private let server: SocketAddress
    private let answer: EventLoopPromise<DNSMessage>

    init(id: UInt16, server: SocketAddress, answer: EventLoopPromise<DNSMessage>) {
        self.id = id
        self.server = server
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == server,
              let response = try? DNSMessage(decoding: Array(envelope.data.readableBytesView)),
              response.id == id, response.flags.isResponse else { return }
        answer.succeed(response)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
    }
}
