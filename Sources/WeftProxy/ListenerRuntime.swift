import NIOCore
import Synchronization
import WeftCore

/// The state of one listener shared by every event loop: its backends, load balancer, outlier
/// detector, counters and open connections. Each method is one short critical section; sockets and
/// timers are handled by the callers outside the lock.
final class ListenerRuntime: Sendable {
    /// The resolved settings a new connection uses.
    struct Settings: Sendable, Equatable {
        var connectTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var maxConnections: Int
        var connectAttempts: Int
        var drainTimeout: TimeAmount

        init(_ c: ListenerConfiguration) {
            connectTimeout = .milliseconds(Int64(c.connectTimeoutMs ?? ListenerConfiguration.defaultConnectTimeoutMs))
            idleTimeout = .milliseconds(Int64(c.idleTimeoutMs ?? ListenerConfiguration.defaultIdleTimeoutMs))
            maxConnections = c.maxConnections ?? ListenerConfiguration.defaultMaxConnections
            connectAttempts = c.connectAttempts ?? ListenerConfiguration.defaultConnectAttempts
            drainTimeout = .milliseconds(Int64(c.drainTimeoutMs ?? ListenerConfiguration.defaultDrainTimeoutMs))
        }
    }

    /// A backend chosen for a connection attempt.
    struct Pick: Sendable {
        var id: String
        var address: SocketAddress
        /// Set when the backend is on another node: the connection goes through its tunnel.
        var tunnel: TunnelEndpoint?
    }

    /// What a connection does once its backend connect succeeded.
    enum ConnectedAction: Sendable, Equatable {
        /// Splice; close after `closeAfter` if set (the listener is draining).
        case proceed(closeAfter: TimeAmount?)
        /// The backend was removed while connecting: close that connection and pick another one.
        case pickAnother
        /// The proxy is shutting down: close both sides.
        case abort
    }

    private struct Backend {
        let address: SocketAddress
        var tunnel: TunnelEndpoint?
        var inConfiguration = true
        /// Bumped on every removal so a drain timer armed for an earlier removal does nothing.
        var removalEpoch: UInt64 = 0
        var latency = LatencyEWMA()
        var counters: BackendCounters
        var connections: [UInt64: any Channel] = [:]
    }

    private struct State {
        var configuration: ListenerConfiguration
        var settings: Settings
        var balancer: LoadBalancer
        var detector: OutlierDetector
        /// Current backends in configuration order; `activeConnections` and `latency` kept up to date.
        var snapshots: [BackendSnapshot] = []
        var position: [String: Int] = [:]
        var backends: [String: Backend] = [:]
        var rng = SplitMix64(seed: 0x5eed_0f_3e_f7)
        var connectionsTotal = 0
        var connectionsActive = 0
        var connectionsRefused = 0
        var connectionsFailed = 0
        var nextConnectionID: UInt64 = 0
        var epoch: UInt64 = 0
        /// Set when the listener stopped listening: connections established after this close at the deadline.
        var drainDeadline: NIODeadline?
        var shutDown = false
        /// When the snapshots' latencies were last decayed to "now" (seconds, monotonic).
        var latenciesRefreshedAt: Double = 0
        /// Connections admitted but not yet registered with a backend, so shutdown can reach them.
        var pending: [UInt64: any Channel] = [:]
    }

    private let state: Mutex<State>

    init(_ configuration: ListenerConfiguration) {
        let outlier = configuration.outlierDetection ?? OutlierDetection()
        var state = State(
            configuration: configuration, settings: Settings(configuration),
            balancer: LoadBalancer(policy: configuration.loadBalancer ?? ListenerConfiguration.defaultLoadBalancer),
            detector: OutlierDetector(outlier))
        Self.setBackends(configuration.backends, in: &state)
        self.state = Mutex(state)
    }

    var configuration: ListenerConfiguration { state.withLock { $0.configuration } }
    var settings: Settings { state.withLock { $0.settings } }

    static let latencyRefreshInterval = 0.1

    static func now() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    // MARK: - Connection life cycle (event loops)

    /// Admits a new client connection, or nil when the listener is at `maxConnections` (or stopping).
    func admit(_ channel: any Channel) -> (id: UInt64, settings: Settings)? {
        state.withLock { s in
            guard !s.shutDown, s.drainDeadline == nil, s.connectionsActive < s.settings.maxConnections else {
                s.connectionsRefused += 1
                return nil
            }
            s.connectionsActive += 1
            s.nextConnectionID &+= 1
            s.pending[s.nextConnectionID] = channel
            return (s.nextConnectionID, s.settings)
        }
    }

    /// Chooses a backend not in `tried` and not ejected (an ejected one if nothing else is left), and
    /// counts the attempt as an active connection of that backend.
    func pick(clientKey: UInt64, tried: Set<String>) -> Pick? {
        state.withLock { s in
            let now = Self.now()
            if now - s.latenciesRefreshedAt >= Self.latencyRefreshInterval {
                // Estimates decay between samples; without this a backend that was slow once and then
                // lost every p2c comparison would keep its old estimate and never be tried again.
                s.latenciesRefreshedAt = now
                for i in s.snapshots.indices {
                    s.snapshots[i].latency = s.backends[s.snapshots[i].id]?.latency.value(at: now)
                }
            }
            let ejected = s.detector.ejected(now: now)
            var id: String?
            if ejected.isEmpty {
                id = s.balancer.pick(from: s.snapshots, clientKey: clientKey, excluding: tried, using: &s.rng)
            } else {
                id = s.balancer.pick(from: s.snapshots, clientKey: clientKey, excluding: tried.union(ejected), using: &s.rng)
                    ?? s.balancer.pick(from: s.snapshots, clientKey: clientKey, excluding: tried, using: &s.rng)
            }
            guard let id, let index = s.position[id], let backend = s.backends[id] else { return nil }
            s.snapshots[index].activeConnections += 1
            s.backends[id]!.counters.connectionsActive += 1
            return Pick(id: id, address: backend.address, tunnel: backend.tunnel)
        }
    }

    /// A connect to `backend` failed or timed out: counts it and tells outlier detection.
    func connectFailed(connection: UInt64, backend: String) {
        state.withLock { s in
            guard s.backends[backend] != nil else { return }
            s.backends[backend]!.counters.connectionsActive -= 1
            s.backends[backend]!.counters.connectFailures += 1
            if let index = s.position[backend] {
                s.snapshots[index].activeConnections -= 1
                if s.detector.recordFailure(backend, poolSize: s.snapshots.count, now: Self.now()) {
                    s.backends[backend]!.counters.ejections += 1
                }
            } else {
                Self.removeIfUnused(backend, in: &s)
            }
        }
    }

    /// A connect to `backend` succeeded after `latency` seconds; registers the connection for drains.
    func connected(connection: UInt64, backend: String, latency: Double, channel: any Channel) -> ConnectedAction {
        state.withLock { s in
            guard s.backends[backend] != nil else { return .abort }
            if s.shutDown {
                Self.release(backend, in: &s)
                return .abort
            }
            guard let index = s.position[backend] else {
                Self.release(backend, in: &s)
                return .pickAnother
            }
            let now = Self.now()
            s.detector.recordSuccess(backend, now: now)
            s.backends[backend]!.latency.record(latency, at: now)
            s.snapshots[index].latency = s.backends[backend]!.latency.value(at: now)
            s.backends[backend]!.counters.connectionsTotal += 1
            s.backends[backend]!.connections[connection] = channel
            s.pending[connection] = nil
            s.connectionsTotal += 1
            if let deadline = s.drainDeadline {
                return .proceed(closeAfter: max(deadline - .now(), .zero))
            }
            return .proceed(closeAfter: nil)
        }
    }

    /// A connect succeeded after its client had gone: releases the backend's count.
    func abandoned(backend: String) {
        state.withLock { s in
            guard s.backends[backend] != nil else { return }
            Self.release(backend, in: &s)
        }
    }

    /// Adds bytes of an open connection to its backend's counters.
    func addBytes(backend: String, in bytesIn: Int, out bytesOut: Int) {
        state.withLock { s in
            guard s.backends[backend] != nil else { return }
            s.backends[backend]!.counters.bytesIn += bytesIn
            s.backends[backend]!.counters.bytesOut += bytesOut
        }
    }

    /// A client connection closed; `backend` is where it was connected (or being connected), if anywhere.
    func closed(connection: UInt64, backend: String?, failed: Bool, bytesIn: Int, bytesOut: Int) {
        state.withLock { s in
            s.connectionsActive -= 1
            s.pending[connection] = nil
            if failed { s.connectionsFailed += 1 }
            guard let backend, s.backends[backend] != nil else { return }
            s.backends[backend]!.counters.bytesIn += bytesIn
            s.backends[backend]!.counters.bytesOut += bytesOut
            s.backends[backend]!.connections[connection] = nil
            Self.release(backend, in: &s)
        }
    }

    private static func release(_ backend: String, in s: inout State) {
        s.backends[backend]!.counters.connectionsActive -= 1
        if let index = s.position[backend] {
            s.snapshots[index].activeConnections -= 1
        } else {
            removeIfUnused(backend, in: &s)
        }
    }

    private static func removeIfUnused(_ backend: String, in s: inout State) {
        if let b = s.backends[backend], !b.inConfiguration, b.counters.connectionsActive == 0 {
            s.backends[backend] = nil
        }
    }

    // MARK: - Configuration (apply)

    /// A connection to close when a drain timer fires, if its backend is still removed by then.
    struct Drain: Sendable {
        var channel: any Channel
        var backend: String
        var epoch: UInt64
    }

    /// Applies a changed configuration to new connections; returns the open connections of removed
    /// backends, to be closed after the drain timeout unless their backend comes back.
    func update(_ configuration: ListenerConfiguration) -> (drains: [Drain], drainTimeout: TimeAmount) {
        state.withLock { s in
            let old = s.configuration
            s.configuration = configuration
            s.settings = Settings(configuration)
            let policy = configuration.loadBalancer ?? ListenerConfiguration.defaultLoadBalancer
            if policy != (old.loadBalancer ?? ListenerConfiguration.defaultLoadBalancer) {
                s.balancer = LoadBalancer(policy: policy)
            }
            if configuration.outlierDetection != old.outlierDetection {
                s.detector = OutlierDetector(configuration.outlierDetection ?? OutlierDetection())
            }
            let removed = Self.setBackends(configuration.backends, in: &s)
            var drains: [Drain] = []
            for id in removed {
                s.detector.forget(id)
                guard let backend = s.backends[id] else { continue }
                for channel in backend.connections.values {
                    drains.append(Drain(channel: channel, backend: id, epoch: backend.removalEpoch))
                }
                Self.removeIfUnused(id, in: &s)
            }
            return (drains, s.settings.drainTimeout)
        }
    }

    /// `update`, then arms a drain timer on each returned connection's event loop.
    func reconfigure(_ configuration: ListenerConfiguration) {
        let (drains, timeout) = update(configuration)
        for drain in drains {
            drain.channel.eventLoop.scheduleTask(in: timeout) {
                if self.shouldClose(drain) { drain.channel.close(promise: nil) }
            }
        }
    }

    /// True when the drain timer armed for `drain` should close its connection.
    func shouldClose(_ drain: Drain) -> Bool {
        state.withLock { s in
            guard let backend = s.backends[drain.backend] else { return true }
            return !backend.inConfiguration && backend.removalEpoch == drain.epoch
        }
    }

    /// Rebuilds the snapshots for `backends`; returns the ids that left the configuration.
    @discardableResult
    private static func setBackends(_ backends: [BackendConfiguration], in s: inout State) -> [String] {
        var snapshots: [BackendSnapshot] = []
        var position: [String: Int] = [:]
        for backend in backends {
            let id = backend.id
            guard position[id] == nil else { continue }
            if s.backends[id] == nil {
                guard let address = try? SocketAddress(ipAddress: backend.address, port: backend.port) else { continue }
                s.backends[id] = Backend(address: address, counters: BackendCounters(id: id))
            }
            s.backends[id]!.inConfiguration = true
            s.backends[id]!.tunnel = backend.tunnel?.endpoint
            s.backends[id]!.counters.draining = false
            position[id] = snapshots.count
            snapshots.append(BackendSnapshot(
                id: id, weight: backend.weight ?? BackendConfiguration.defaultWeight,
                activeConnections: s.backends[id]!.counters.connectionsActive,
                latency: s.backends[id]!.latency.value(at: now())))
        }
        var removed: [String] = []
        for (id, backend) in s.backends where position[id] == nil && backend.inConfiguration {
            s.backends[id]!.inConfiguration = false
            s.backends[id]!.counters.draining = true
            s.epoch &+= 1
            s.backends[id]!.removalEpoch = s.epoch
            removed.append(id)
        }
        s.snapshots = snapshots
        s.position = position
        return removed
    }

    /// The listener stopped listening: no new connections; returns every open connection, to be
    /// closed after the drain timeout.
    func stopListening() -> (channels: [any Channel], drainTimeout: TimeAmount) {
        state.withLock { s in
            s.drainDeadline = .now() + s.settings.drainTimeout
            return (Self.allChannels(s), s.settings.drainTimeout)
        }
    }

    /// The proxy is shutting down: returns every open connection, to be closed now.
    func shutDown() -> [any Channel] {
        state.withLock { s in
            s.shutDown = true
            return Self.allChannels(s)
        }
    }

    private static func allChannels(_ s: State) -> [any Channel] {
        var all = Array(s.pending.values)
        for backend in s.backends.values { all += backend.connections.values }
        return all
    }

    var activeConnections: Int { state.withLock { $0.connectionsActive } }

    func counters() -> ListenerCounters {
        state.withLock { s in
            let now = Self.now()
            var result = ListenerCounters(
                name: s.configuration.name, endpoint: s.configuration.endpoint,
                connectionsTotal: s.connectionsTotal, connectionsActive: s.connectionsActive,
                connectionsRefused: s.connectionsRefused, connectionsFailed: s.connectionsFailed)
            for snapshot in s.snapshots {
                var counters = s.backends[snapshot.id]!.counters
                counters.ejected = s.detector.isEjected(snapshot.id, now: now)
                result.backends.append(counters)
            }
            for (id, backend) in s.backends.sorted(by: { $0.key < $1.key }) where s.position[id] == nil {
                result.backends.append(backend.counters)
            }
            return result
        }
    }
}
