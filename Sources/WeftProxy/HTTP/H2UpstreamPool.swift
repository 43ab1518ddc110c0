import NIOCore
import NIOHTTP2

/// One listener's HTTP/2 (prior knowledge) connections to its backends on one event loop, for the
/// streams of HTTP/2 clients: streams of many clients share a connection per backend (and source
/// identity, for tunnels) up to the backend's `SETTINGS_MAX_CONCURRENT_STREAMS`; when every
/// connection is full another one is opened. A connection without streams closes after
/// `UpstreamPool.idleTimeout`; one the backend sent GOAWAY on takes no new streams and closes when
/// its last stream ends.
///
/// Used only on its event loop (owned by the loop's `UpstreamPool`), so it needs no lock.
final class H2UpstreamPool {
    /// The upstream connection could not be made (connect failed or timed out): nothing of the
    /// stream was sent, so it may be retried.
    struct ConnectFailure: Error {
        var underlying: any Error
    }

    /// The pool is closed (the proxy is shutting down).
    struct Closed: Error {}

    let loop: any EventLoop
    let runtime: ListenerRuntime
    private var connections: [UpstreamKey: [H2UpstreamConnection]] = [:]
    /// The `SETTINGS_MAX_CONCURRENT_STREAMS` each backend last sent: what a new connection to it is
    /// assumed to allow until its own SETTINGS arrive.
    private var learnedMaxStreams: [UpstreamKey: Int] = [:]
    private var closed = false

    init(loop: any EventLoop, runtime: ListenerRuntime) {
        self.loop = loop
        self.runtime = runtime
    }

    /// A new stream to `pick` on a connection with room for it, connecting one if there is none.
    func openStream(_ pick: ListenerRuntime.Pick, key: UpstreamKey, client: any Channel, connector: BackendConnector,
                    connectTimeout: TimeAmount) -> EventLoopFuture<any Channel> {
        guard !closed else { return loop.makeFailedFuture(Closed()) }
        if let connection = connections[key]?.first(where: { $0.hasRoom }) {
            return connection.openStream()
        }
        let connection = H2UpstreamConnection(
            key: key, pool: self, assumedMaxStreams: learnedMaxStreams[key] ?? H2UpstreamConnection.assumedMaxStreams)
        connections[key, default: []].append(connection)
        connection.connect(pick, client: client, connector: connector, timeout: connectTimeout)
        return connection.openStream()
    }

    /// A connection to `key` got the backend's stream limit.
    func learned(maxStreams: Int, for key: UpstreamKey) {
        learnedMaxStreams[key] = maxStreams
    }

    /// `connection` takes no new streams any more (closed, or going away).
    func retire(_ connection: H2UpstreamConnection) {
        guard var list = connections[connection.key], let index = list.firstIndex(where: { $0 === connection }) else { return }
        list.remove(at: index)
        connections[connection.key] = list.isEmpty ? nil : list
    }

    /// The listener's backends changed: connections to removed backends take no new streams; idle
    /// ones close now, busy ones when their last stream ends or `drainTimeout` has passed.
    func backendsChanged(drainTimeout: TimeAmount) {
        for key in Array(learnedMaxStreams.keys) where !runtime.isCurrent(backend: key.backend) {
            learnedMaxStreams[key] = nil
        }
        for key in Array(connections.keys) where !runtime.isCurrent(backend: key.backend) {
            for connection in connections.removeValue(forKey: key) ?? [] {
                connection.drain(within: drainTimeout)
            }
        }
    }

    /// The proxy is shutting down: closes every connection.
    func closeAll() {
        closed = true
        let all = connections.values.flatMap { $0 }
        connections = [:]
        for connection in all { connection.close() }
    }
}

/// One pooled HTTP/2 connection to a backend: its handler sits after the connection's
/// `NIOHTTP2Handler` and sees the connection-level frames (the backend's SETTINGS and GOAWAY).
final class H2UpstreamConnection: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    /// Streams assumed allowed on a first connection to a backend until its SETTINGS say otherwise
    /// (a common default); later connections assume what the last one learned.
    static let assumedMaxStreams = 100

    /// Empty DATA frames a backend may send in a row before its connection is closed as abusive.
    static let maximumSequentialEmptyDataFrames = 10_000

    private enum State {
        case connecting([EventLoopPromise<any Channel>])
        case ready(NIOHTTP2Handler.StreamMultiplexer, any Channel)
        case closed
    }

    let key: UpstreamKey
    private unowned let pool: H2UpstreamPool
    private var state = State.connecting([])
    /// Streams open or being opened on this connection.
    private var streams = 0
    private var maxStreams: Int
    /// GOAWAY received or draining: no new streams; closes when the last one ends.
    private var retired = false
    /// Since when no stream is open (nil while one is, or before the first).
    private var idleSince: NIODeadline?
    /// At most one idle timer per connection: streams opening and ending only move `idleSince`.
    private var idleTimerArmed = false

    init(key: UpstreamKey, pool: H2UpstreamPool, assumedMaxStreams: Int) {
        self.key = key
        self.pool = pool
        maxStreams = assumedMaxStreams
    }

    var hasRoom: Bool {
        if retired { return false }
        if case .closed = state { return false }
        return streams < maxStreams
    }

    func connect(_ pick: ListenerRuntime.Pick, client: any Channel, connector: BackendConnector, timeout: TimeAmount) {
        let started = NIODeadline.now()
        let runtime = pool.runtime
        connector.connect(pick, client, timeout).assumeIsolated().whenComplete { [self] result in
            guard case .connecting(let waiters) = state else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let error):
                fail(waiters, ConnectFailure(underlying: error))
            case .success(let channel):
                runtime.upstreamConnected(pick.entry, latency: Double((NIODeadline.now() - started).nanoseconds) / 1e9)
                do {
                    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                    // NIO's guard against a flood of empty DATA frames (default: more than 1 in a row on the
                    // connection, between HEADERS or END_STREAM) would cut every stream of the shared
                    // connection when the empty frames of many streams of a backend arrive together.
                    configuration.maximumSequentialEmptyDataFrames = Self.maximumSequentialEmptyDataFrames
                    configuration.initialSettings = [
                        HTTP2Setting(parameter: .enablePush, value: 0),
                        HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: 16384),
                    ]
                    let pipeline = channel.pipeline.syncOperations
                    let multiplexer = try pipeline.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: configuration, streamConfiguration: .init()
                    ) { pushed in pushed.close() }
                    try pipeline.addHandler(self)
                    state = .ready(multiplexer, channel)
                    for promise in waiters { multiplexer.createStreamChannel(promise: promise) { $0.eventLoop.makeSucceededVoidFuture() } }
                } catch {
                    channel.close(promise: nil)
                    fail(waiters, error)
                }
            }
        }
    }

    private typealias ConnectFailure = H2UpstreamPool.ConnectFailure

    private func fail(_ waiters: [EventLoopPromise<any Channel>], _ error: any Error) {
        state = .closed
        pool.retire(self)
        for promise in waiters { promise.fail(error) }
    }

    /// A new stream: its channel once created (after the connection is up), with nothing sent yet.
    func openStream() -> EventLoopFuture<any Channel> {
        let promise = pool.loop.makePromise(of: (any Channel).self)
        streams += 1
        idleSince = nil
        switch state {
        case .connecting(var waiters):
            state = .closed  // so `waiters` is the array's only owner
            waiters.append(promise)
            state = .connecting(waiters)
        case .ready(let multiplexer, _):
            multiplexer.createStreamChannel(promise: promise) { $0.eventLoop.makeSucceededVoidFuture() }
        case .closed:
            promise.fail(H2UpstreamPool.Closed())
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let stream):
                stream.closeFuture.assumeIsolated().whenComplete { _ in self.streamEnded() }
            case .failure:
                streamEnded()
            }
        }
        return promise.futureResult
    }

    private func streamEnded() {
        streams -= 1
        guard streams == 0 else { return }
        if retired {
            close()
            return
        }
        idleSince = .now()
        if !idleTimerArmed { armIdleTimer(in: UpstreamPool.idleTimeout) }
    }

    private func armIdleTimer(in delay: TimeAmount) {
        idleTimerArmed = true
        pool.loop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleTimerArmed = false
            guard let idleSince, case .ready = state else { return }  // busy, or closed
            let idle = NIODeadline.now() - idleSince
            if idle >= UpstreamPool.idleTimeout {
                close()
            } else {
                armIdleTimer(in: UpstreamPool.idleTimeout - idle)
            }
        }
    }

    /// Takes no new streams; closes now when idle, else when the last stream ends or after `timeout`.
    func drain(within timeout: TimeAmount) {
        retired = true
        if streams == 0 { return close() }
        pool.loop.assumeIsolated().scheduleTask(in: timeout) { [self] in close() }
    }

    func close() {
        retired = true
        switch state {
        case .ready(_, let channel):
            channel.close(promise: nil)
        case .connecting(let waiters):
            fail(waiters, H2UpstreamPool.Closed())
        case .closed:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data).payload {
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                maxStreams = setting.value
                pool.learned(maxStreams: setting.value, for: key)
            }
        case .goAway:
            retired = true
            pool.retire(self)
            if streams == 0 { context.close(promise: nil) }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        retired = true
        pool.retire(self)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension H2UpstreamPool: Sendable {}

@available(*, unavailable)
extension H2UpstreamConnection: Sendable {}
