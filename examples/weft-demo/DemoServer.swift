import NIOCore
import NIOHTTP1
import NIOPosix

/// The bound listener of `weft-demo`.
final class DemoServer: Sendable {
    let channel: Channel
    /// Succeeds once `drain()` has finished: listener closed, connections done or force-closed.
    let drained: EventLoopFuture<Void>
    /// `ip:port` actually bound (the kernel's port when `PORT=0`).
    let listeningAddress: String

    private init(channel: Channel, drained: EventLoopFuture<Void>, listeningAddress: String) {
        self.channel = channel
        self.drained = drained
        self.listeningAddress = listeningAddress
    }

    /// Binds `configuration.bindHost:configuration.port`; connections are spread over all of `group`.
    static func start(
        configuration: DemoConfiguration,
        group: MultiThreadedEventLoopGroup,
        gracePeriod: TimeAmount = .milliseconds(1_500)
    ) -> EventLoopFuture<DemoServer> {
        let listenerLoop = group.next()
        let drained = listenerLoop.makePromise(of: Void.self)
        // With a fixed port the answers are rendered once; with PORT=0 the port is known only per
        // connection (its local port is the listener's).
        let resolver = configuration.dnsServer.flatMap { try? DemoResolver(server: $0, searchDomains: configuration.searchDomains) }
        let sharedService = configuration.port == 0
            ? nil
            : DemoService(configuration: configuration, answers: DemoAnswers(configuration: configuration, port: configuration.port), resolver: resolver)

        return ServerBootstrap(group: listenerLoop, childGroup: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionDrainer(drained: drained, gracePeriod: gracePeriod)
                    )
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let service = sharedService ?? DemoService(
                        configuration: configuration,
                        answers: DemoAnswers(configuration: configuration, port: channel.localAddress?.port ?? 0),
                        resolver: resolver
                    )
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true,
                        withErrorHandling: true
                    )
                    try channel.pipeline.syncOperations.addHandler(DemoHTTPHandler(service: service))
                }
            }
            .bind(host: configuration.bindHost, port: configuration.port)
            .always { result in
                if case .failure(let error) = result {
                    drained.fail(error)  // nothing to drain; completes the promise
                }
            }
            .map { channel in
                let port = channel.localAddress?.port ?? configuration.port
                return DemoServer(
                    channel: channel,
                    drained: drained.futureResult,
                    listeningAddress: IPLiteral.hostPort(channel.localAddress?.ipAddress ?? configuration.bindHost, port: port)
                )
            }
    }

    /// Stops accepting and lets in-flight requests finish; safe to call more than once, from any thread.
    func drain() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
