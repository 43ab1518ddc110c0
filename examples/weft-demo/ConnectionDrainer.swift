import NIOCore

/// Tracks the connections a listener accepts and, on `ChannelShouldQuiesceEvent`, drains them.
///
/// Sits on the server channel (so it runs on the listener's event loop and needs no lock), like
/// swift-nio-extras' `ServerQuiescingHelper`: it stops accepting, asks every open connection to quiesce
/// (`HTTPServerPipelineHandler` then closes it after the response in flight, or at once when idle), and
/// succeeds `drained` once all are closed, or after `gracePeriod` with the stragglers force-closed.
final class ConnectionDrainer: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let drained: EventLoopPromise<Void>
    private let gracePeriod: TimeAmount
    private var connections: [ObjectIdentifier: Channel] = [:]
    private var isDraining = false
    private var isDrained = false

    init(drained: EventLoopPromise<Void>, gracePeriod: TimeAmount) {
        self.drained = drained
        self.gracePeriod = gracePeriod
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let connection = unwrapInboundIn(data)
        guard !isDraining else {
            connection.close(promise: nil)
            return
        }
        let id = ObjectIdentifier(connection)
        connections[id] = connection
        connection.closeFuture.hop(to: context.eventLoop).assumeIsolated().whenComplete { _ in
            self.connections[id] = nil
            if self.isDraining && self.connections.isEmpty {
                self.finish()
            }
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard !isDraining else { return }
        isDraining = true
        context.close(promise: nil)
        for connection in connections.values {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        if connections.isEmpty {
            return finish()
        }
        context.eventLoop.assumeIsolated().scheduleTask(in: gracePeriod) {
            for connection in self.connections.values {
                connection.close(promise: nil)
            }
            self.finish()
        }
    }

    private func finish() {
        guard !isDrained else { return }
        isDrained = true
        drained.succeed()
    }
}

@available(*, unavailable)
extension ConnectionDrainer: Sendable {}
