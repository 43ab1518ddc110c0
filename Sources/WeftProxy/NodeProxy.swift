#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WeftCore

/// The node proxy: TCP listeners that balance each accepted connection over their backends and
/// splice the bytes both ways.
///
/// Listeners are identified by their `address:port`: `apply` binds new ones, updates the others in
/// place (new connections use the new backends and settings at once) and stops removed ones. Each
/// accepted connection lives on one event loop with its backend connection.
public final class NodeProxy: Sendable {
    private struct Listener: Sendable {
        var runtime: ListenerRuntime
        /// One server channel per event loop, all bound to the same address (see `bind`).
        var channels: [any Channel]

        var localAddress: SocketAddress? { channels.first?.localAddress }

        func close() async {
            for channel in channels { try? await channel.close() }
        }
    }

    private struct State: Sendable {
        /// By endpoint (`address:port`).
        var listeners: [String: Listener] = [:]
        /// Endpoints in the order of the last applied configuration.
        var order: [String] = []
        /// The last `apply` or `shutdown`, which the next one waits for.
        var tail: Task<Void, any Error>?
        var shutDown = false
    }

    private let group: any EventLoopGroup
    private let logger: Logger
    private let connector: BackendConnector
    private let state = Mutex(State())

    /// - Parameters:
    ///   - group: the event loops for listeners and connections, typically
    ///     `MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)`.
    ///   - mesh: how backends on other nodes are reached (through their tunnel); nil connects to every
    ///     backend directly.
    public convenience init(group: any EventLoopGroup, logger: Logger, mesh: MeshRouting? = nil) {
        self.init(group: group, logger: logger, connector: mesh.map { .mesh($0) } ?? .tcp)
    }

    init(group: any EventLoopGroup, logger: Logger, connector: BackendConnector) {
        self.group = group
        self.logger = logger
        self.connector = connector
    }

    /// Reconciles the listeners with `configuration`: new listeners bind, removed ones stop listening
    /// (their open connections close after their drain timeout), changed backends and policies apply to
    /// new connections at once; a removed backend takes no new connections and its open connections
    /// close after the drain timeout. Other listeners' connections are never disturbed.
    ///
    /// Throws `ProxyConfigurationError`, changing nothing, when the configuration is invalid or a new
    /// listener's address cannot be bound. Calls are applied one at a time, in call order.
    public func apply(_ configuration: ProxyConfiguration) async throws {
        try await serialized { try await self.reconcile(configuration) }
    }

    /// Counters of every listener, in configuration order.
    public func counters() -> [ListenerCounters] {
        let listeners = state.withLock { s in s.order.compactMap { s.listeners[$0]?.runtime } }
        return listeners.map { $0.counters() }
    }

    /// Cumulative request statistics of every `http` listener that has a `service`, one sample per
    /// (service, port, backend revision); revision "" collects backends without one. Counts never
    /// go down while the proxy runs (backends that leave keep their revision's counts).
    public func trafficSamples() -> [TrafficSample] {
        let listeners = state.withLock { s in s.order.compactMap { s.listeners[$0]?.runtime } }
        var samples: [TrafficSample] = []
        for runtime in listeners {
            let configuration = runtime.configuration
            guard configuration.resolvedProtocol == .http, let service = configuration.service else { continue }
            for (revision, statistics) in runtime.revisionTraffic() {
                samples.append(TrafficSample(
                    service: service, port: configuration.port, revision: revision, requests: statistics.requests,
                    responses: statistics.responseCounts, failures: statistics.failures, retries: statistics.retries,
                    latency: statistics.latencySummary))
            }
        }
        return samples
    }

    /// The bound address of each listener, by endpoint (`address:port` as configured).
    public func boundAddresses() -> [String: SocketAddress] {
        state.withLock { s in s.listeners.compactMapValues { $0.localAddress } }
    }

    /// Stops accepting and closes every connection at once. Later `apply` calls fail.
    public func shutdown() async {
        try? await serialized {
            let listeners = self.state.withLock { s -> [Listener] in
                s.shutDown = true
                defer { s.listeners = [:]; s.order = [] }
                return Array(s.listeners.values)
            }
            for listener in listeners {
                await listener.close()
            }
            for listener in listeners {
                for channel in listener.runtime.shutDown() {
                    channel.close(promise: nil)
                }
            }
            self.logger.info("proxy stopped", metadata: ["listeners": "\(listeners.count)"])
        }
    }

    private func serialized(_ work: @escaping @Sendable () async throws -> Void) async throws {
        let task = state.withLock { s -> Task<Void, any Error> in
            let previous = s.tail
            let task = Task {
                _ = await previous?.result
                try await work()
            }
            s.tail = task
            return task
        }
        try await task.value
    }

    private func reconcile(_ configuration: ProxyConfiguration) async throws {
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ProxyConfigurationError(problems: problems) }
        let (current, isShutDown) = state.withLock { ($0.listeners, $0.shutDown) }
        guard !isShutDown else {
            throw ProxyConfigurationError(problems: [FieldError(path: "", message: "the proxy is shut down")])
        }

        // Bind every new listener before changing anything; undo on the first failure.
        var added: [String: Listener] = [:]
        for (i, listener) in configuration.listeners.enumerated() where current[listener.endpoint] == nil {
            do {
                added[listener.endpoint] = try await bind(listener)
            } catch {
                for done in added.values { await done.close() }
                throw ProxyConfigurationError(problems: [
                    (FieldPath() / "listeners")[i].error(
                        "listener \"\(listener.name)\" cannot listen on \(listener.endpoint): \(Self.describe(error))"),
                ])
            }
        }

        var removed: [Listener] = []
        state.withLock { s in
            var next: [String: Listener] = [:]
            for listener in configuration.listeners {
                if let existing = s.listeners[listener.endpoint] {
                    existing.runtime.reconfigure(listener)
                    next[listener.endpoint] = existing
                } else {
                    next[listener.endpoint] = added[listener.endpoint]
                }
            }
            removed = s.listeners.filter { next[$0.key] == nil }.map(\.value)
            s.listeners = next
            s.order = configuration.listeners.map(\.endpoint)
        }

        for listener in removed {
            await listener.close()
            let (open, timeout) = listener.runtime.stopListening()
            for channel in open {
                channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            }
            logger.info("listener stopped", metadata: [
                "listener": "\(listener.runtime.configuration.name)", "draining": "\(open.count)",
            ])
        }
        for listener in added.values {
            logger.info("listening", metadata: [
                "listener": "\(listener.runtime.configuration.name)",
                "address": "\(listener.localAddress.map { "\($0)" } ?? "?")",
            ])
        }
    }

    /// Binds one server channel per event loop to the listener's address with SO_REUSEPORT (Linux), so
    /// the kernel spreads accepts over the loops and each accepted connection stays on the loop that
    /// accepted it, with its backend connection: no hop between threads per connection. (A single
    /// acceptor would hand every other connection to another loop, through a chain of futures and
    /// two cross-thread wake-ups.) Port 0 binds the first channel to a free port and the others to it.
    private func bind(_ configuration: ListenerConfiguration) async throws -> Listener {
        let runtime = ListenerRuntime(configuration)
        #if os(Linux)
        let loops = Array(group.makeIterator())
        #else
        // Elsewhere SO_REUSEPORT does not balance accepts: one acceptor, connections spread by NIO.
        let loops = [group.next()]
        #endif
        var channels: [any Channel] = []
        do {
            var port = configuration.port
            if loops.count > 1, port != 0 {
                try await Self.checkPortIsFree(host: configuration.address, port: port, on: loops[0])
            }
            for loop in loops {
                let channel = try await serverBootstrap(
                    group: loop, childGroup: loops.count > 1 ? loop : group, runtime: runtime, reusePort: loops.count > 1)
                    .bind(host: configuration.address, port: port)
                    .get()
                channels.append(channel)
                if port == 0, let bound = channel.localAddress?.port { port = bound }
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return Listener(runtime: runtime, channels: channels)
    }

    /// Fails with EADDRINUSE when anything listens on `host:port` already. SO_REUSEPORT would let the
    /// acceptors join another process's (or listener's) group on that port, of the same user, and the
    /// kernel would then split connections between the two silently; a plain bind is refused instead.
    private static func checkPortIsFree(host: String, port: Int, on loop: any EventLoop) async throws {
        let probe = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port)
            .get()
        try await probe.close()
    }

    private func serverBootstrap(group: any EventLoopGroup, childGroup: any EventLoopGroup, runtime: ListenerRuntime,
                                 reusePort: Bool) -> ServerBootstrap {
        let connector = self.connector
        var bootstrap = ServerBootstrap(group: group, childGroup: childGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if reusePort {
            bootstrap = bootstrap.serverChannelOption(.socketOption(.init(rawValue: SO_REUSEPORT)), value: 1)
        }
        return bootstrap
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    switch runtime.settings.protocol {
                    case .tcp:
                        try channel.pipeline.syncOperations.addHandler(ProxyConnectionHandler(runtime: runtime, connector: connector))
                    case .http:
                        // Requests are parsed, so reading starts at once; the handler gates reads and
                        // holds pipelined requests itself.
                        // The first bytes decide between HTTP/1.1 and HTTP/2 (h2c prior knowledge).
                        let http1 = HTTPProxyHandler(runtime: runtime, connector: connector)
                        try channel.pipeline.syncOperations.addHandlers([
                            ProtocolSniffer(http1: http1, runtime: runtime, connector: connector), http1,
                        ])
                        try channel.syncOptions?.setOption(.autoRead, value: true)
                    }
                }
            }
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: return "address already in use"
            case EADDRNOTAVAIL: return "address not available on this host"
            case EACCES: return "permission denied (ports below 1024 need privileges)"
            default: break
            }
        }
        return "\(error)"
    }
}
