import Histogram
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
        var `protocol`: ListenerProtocol
        /// `http.timeoutMs`: from the request's first byte sent to the response head.
        var requestTimeout: TimeAmount
        /// `http.retries.attempts`: tries per request after the first.
        var retryAttempts: Int

        init(_ c: ListenerConfiguration) {
            connectTimeout = .milliseconds(Int64(c.connectTimeoutMs ?? ListenerConfiguration.defaultConnectTimeoutMs))
            idleTimeout = .milliseconds(Int64(c.idleTimeoutMs ?? ListenerConfiguration.defaultIdleTimeoutMs))
            maxConnections = c.maxConnections ?? ListenerConfiguration.defaultMaxConnections
            connectAttempts = c.connectAttempts ?? ListenerConfiguration.defaultConnectAttempts
            drainTimeout = .milliseconds(Int64(c.drainTimeoutMs ?? ListenerConfiguration.defaultDrainTimeoutMs))
            `protocol` = c.resolvedProtocol
            requestTimeout = .milliseconds(Int64(c.http?.timeoutMs ?? HTTPRouteSettings.defaultTimeoutMs))
            retryAttempts = c.http?.retries?.attempts ?? RetryPolicy.defaultAttempts
        }
    }

    /// A backend chosen for a connection attempt.
    struct Pick: Sendable {
        var id: String
        var address: SocketAddress
        /// Set when the backend is on another node: the connection goes through its tunnel.
        var tunnel: TunnelEndpoint?
        /// The backend's entry, for `attemptFinished` and `upstreamConnected` (no lookup by id).
        var entry: Entry
    }

    /// A backend's state, opaque outside this file. Its fields are read and written only under the
    /// listener's lock. An entry stays in `State.backends` while an attempt or connection counts
    /// against it (see `removeIfUnused`), so one handed out with a `Pick` is the current one.
    final class Entry: @unchecked Sendable {
        let id: String
        fileprivate let address: SocketAddress
        fileprivate var tunnel: TunnelEndpoint?
        fileprivate var inConfiguration = true
        /// Where it is in the snapshots; nil once it left the configuration.
        fileprivate var position: BackendPosition?
        /// Bumped on every removal so a drain timer armed for an earlier removal does nothing.
        fileprivate var removalEpoch: UInt64 = 0
        fileprivate var latency = LatencyEWMA()
        fileprivate var counters: BackendCounters
        fileprivate var connections: [UInt64: any Channel] = [:]
        /// `revision`, or "" when the backend has none.
        fileprivate var revision = ""
        /// Index of its revision's request statistics in `State.revisionTraffic`.
        fileprivate var revisionSlot = 0
        fileprivate var requests = RequestStatistics()

        fileprivate init(id: String, address: SocketAddress) {
            self.id = id
            self.address = address
            counters = BackendCounters(id: id)
        }
    }

    /// The outcome of asking for a backend for one HTTP request attempt.
    enum RequestPick: Sendable {
        case backend(Pick)
        /// No backend is left that this request has not tried (or none at all).
        case noBackend
        /// A retry would exceed the listener's retry budget.
        case noBudget
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

    struct BackendPosition {
        var group: Int
        var index: Int
    }

    private struct State {
        var configuration: ListenerConfiguration
        var settings: Settings
        var policy: LoadBalancerPolicy
        var detector: OutlierDetector
        /// Current backends in configuration order, one list per revision group (see `setBackends`);
        /// `activeConnections` and `latency` kept up to date.
        var snapshots: [[BackendSnapshot]] = []
        /// One balancer per group, so each revision keeps its own round-robin position.
        var balancers: [LoadBalancer] = []
        /// The split weight of each group; the groups after `weights.count` are not in the split.
        var weights: [Int] = []
        var splitPicker = TrafficSplitPicker()
        /// Backend id → (group, index in the group).
        var position: [String: BackendPosition] = [:]
        var backendCount = 0
        /// Current backend ids in configuration order.
        var order: [String] = []
        /// Per-revision request statistics (index: `Entry.revisionSlot`), kept for the listener's
        /// lifetime so traffic samples stay cumulative when backends come and go.
        var revisionTraffic: [RequestStatistics] = []
        var revisionSlots: [String: Int] = [:]
        var retryBudget: RetryBudget
        var http = HTTPListenerCounters()
        /// Upstream connection pools of this listener, one per event loop (HTTP mode).
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>] = [:]
        var backends: [String: Entry] = [:]
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
            policy: configuration.loadBalancer ?? ListenerConfiguration.defaultLoadBalancer,
            detector: OutlierDetector(outlier), retryBudget: RetryBudget(configuration.http?.retries))
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
            if s.settings.protocol == .http { s.connectionsTotal += 1 }
            s.nextConnectionID &+= 1
            s.pending[s.nextConnectionID] = channel
            return (s.nextConnectionID, s.settings)
        }
    }

    /// Chooses a backend not in `tried` and not ejected (an ejected one if nothing else is left), and
    /// counts the attempt as an active connection of that backend.
    func pick(clientKey: UInt64, tried: Set<String>) -> Pick? {
        state.withLock { s in Self.pick(clientKey: clientKey, tried: tried, now: Self.now(), in: &s) }
    }

    /// `pick` for one attempt of an HTTP request: counts the request (a first attempt) or checks and
    /// spends the retry budget (a retry), in the same critical section. A retry goes to a backend
    /// not tried yet when there is one, else to a tried one again (on a new connection: the usual
    /// failure is a pooled connection the backend had just closed, and a service with one replica
    /// must survive that too).
    func pickRequest(clientKey: UInt64, tried: Set<String>, isRetry: Bool) -> RequestPick {
        state.withLock { s in
            let now = Self.now()
            if isRetry {
                guard s.backendCount > 0 else { return .noBackend }
                guard s.retryBudget.tryRetry(now: now) else {
                    s.http.retriesRefused += 1
                    return .noBudget
                }
            } else {
                s.http.requestsTotal += 1
                s.retryBudget.recordRequest(now: now)
            }
            guard let pick = Self.pick(clientKey: clientKey, tried: tried, now: now, in: &s)
                ?? (isRetry ? Self.pick(clientKey: clientKey, tried: [], now: now, in: &s) : nil)
            else {
                if !isRetry { s.http.noBackend += 1 }
                return .noBackend
            }
            return .backend(pick)
        }
    }

    private static func pick(clientKey: UInt64, tried: Set<String>, now: Double, in s: inout State) -> Pick? {
        if now - s.latenciesRefreshedAt >= Self.latencyRefreshInterval {
            // Estimates decay between samples; without this a backend that was slow once and then
            // lost every p2c comparison would keep its old estimate and never be tried again.
            s.latenciesRefreshedAt = now
            for g in s.snapshots.indices {
                for i in s.snapshots[g].indices {
                    s.snapshots[g][i].latency = s.backends[s.snapshots[g][i].id]?.latency.value(at: now)
                }
            }
        }
        let ejected = s.detector.ejected(now: now)
        var id: String?
        if ejected.isEmpty {
            id = choose(clientKey: clientKey, excluding: tried, in: &s)
        } else {
            id = choose(clientKey: clientKey, excluding: tried.union(ejected), in: &s)
                ?? choose(clientKey: clientKey, excluding: tried, in: &s)
        }
        guard let id, let backend = s.backends[id], let position = backend.position else { return nil }
        s.snapshots[position.group][position.index].activeConnections += 1
        backend.counters.connectionsActive += 1
        return Pick(id: id, address: backend.address, tunnel: backend.tunnel, entry: backend)
    }

    /// The traffic split, then the load balancer: a revision of the split is chosen by weight among
    /// those with an eligible backend, then a backend of it. When no revision of the split (with
    /// weight > 0) has one, the other backends are used as if there were no split: revisions not in
    /// it, revisions of weight 0, backends without a revision.
    private static func choose(clientKey: UInt64, excluding: Set<String>, in s: inout State) -> String? {
        if !s.weights.isEmpty {
            var picker = s.splitPicker
            s.splitPicker = TrafficSplitPicker()  // so updating `picker` does not copy its arrays
            let snapshots = s.snapshots
            let group = picker.pick(weights: s.weights) { g in
                snapshots[g].contains { $0.weight > 0 && (excluding.isEmpty || !excluding.contains($0.id)) }
            }
            s.splitPicker = picker
            if let group {
                return s.balancers[group].pick(from: s.snapshots[group], clientKey: clientKey, excluding: excluding, using: &s.rng)
            }
        }
        for group in s.snapshots.indices {
            if let id = s.balancers[group].pick(from: s.snapshots[group], clientKey: clientKey, excluding: excluding, using: &s.rng) {
                return id
            }
        }
        return nil
    }

    /// A connect to `backend` failed or timed out: counts it and tells outlier detection.
    func connectFailed(connection: UInt64, backend: String) {
        state.withLock { s in
            guard s.backends[backend] != nil else { return }
            s.backends[backend]!.counters.connectionsActive -= 1
            s.backends[backend]!.counters.connectFailures += 1
            if let position = s.position[backend] {
                s.snapshots[position.group][position.index].activeConnections -= 1
                if s.detector.recordFailure(backend, poolSize: s.backendCount, now: Self.now()) {
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
            guard let position = s.position[backend] else {
                Self.release(backend, in: &s)
                return .pickAnother
            }
            let now = Self.now()
            s.detector.recordSuccess(backend, now: now)
            s.backends[backend]!.latency.record(latency, at: now)
            s.snapshots[position.group][position.index].latency = s.backends[backend]!.latency.value(at: now)
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

    // MARK: - HTTP requests (event loops)

    /// How one attempt of a request to a backend ended.
    enum AttemptOutcome: Sendable {
        /// The backend answered with this status; `latency` from the attempt's first byte sent to
        /// the response head.
        case response(status: Int, latency: TimeAmount)
        /// The connect failed or timed out: an outlier-detection failure of the backend.
        case connectFailed
        /// No response: the connection closed or reset before the response head, or the request timed out.
        case failed
        /// The client went away first: releases the backend, counts nothing against it.
        case cancelled
    }

    /// Ends one attempt of a request to `backend`: counts it (with its revision), releases the
    /// backend's active count, and says whether the upstream connection may be pooled again (false
    /// once the backend left the configuration or the proxy is shutting down).
    func attemptFinished(_ backend: Entry, outcome: AttemptOutcome, isRetry: Bool) -> Bool {
        state.withLock { s in
            if case .cancelled = outcome {} else {
                backend.requests.record(outcome, isRetry: isRetry)
                s.revisionTraffic[backend.revisionSlot].record(outcome, isRetry: isRetry)
            }
            switch outcome {
            case .connectFailed:
                backend.counters.connectFailures += 1
                if backend.position != nil,
                   s.detector.recordFailure(backend.id, poolSize: s.backendCount, now: Self.now()) {
                    backend.counters.ejections += 1
                }
            case .response:
                if s.detector.tracksAny { s.detector.recordSuccess(backend.id, now: Self.now()) }
            case .failed, .cancelled:
                break
            }
            let keep = backend.inConfiguration && !s.shutDown
            Self.release(backend, in: &s)
            return keep
        }
    }

    /// A new upstream connection to `backend` is up after `latency` seconds (feeds p2cEwma as in TCP mode).
    func upstreamConnected(_ backend: Entry, latency: Double) {
        state.withLock { s in
            let now = Self.now()
            backend.latency.record(latency, at: now)
            backend.counters.connectionsTotal += 1
            if let position = backend.position {
                s.snapshots[position.group][position.index].latency = backend.latency.value(at: now)
            }
        }
    }

    /// Counts an answer the proxy gave itself (400, 403, 502, 503, 504).
    func proxyAnswered(_ reason: HTTPProxyAnswer) {
        state.withLock { s in
            switch reason {
            case .malformedRequest: s.http.malformed += 1
            case .noBackend: break  // counted by `pickRequest`
            case .upstreamFailed: s.http.failed += 1
            case .timeout: s.http.timedOut += 1
            case .denied: s.http.denied += 1
            }
        }
    }

    /// Whether `backend` is still in the configuration (pooled connections of other backends are closed).
    func isCurrent(backend: String) -> Bool {
        state.withLock { s in s.backends[backend]?.inConfiguration ?? false }
    }

    /// This listener's upstream pool on `loop`, created on first use. Call once per client connection.
    func pool(on loop: any EventLoop) -> UpstreamPool {
        let key = ObjectIdentifier(loop)
        let bound = state.withLock { s -> NIOLoopBound<UpstreamPool>? in s.pools[key] }
        if let bound { return bound.value }
        let pool = UpstreamPool(loop: loop, runtime: self)
        let created = NIOLoopBound(pool, eventLoop: loop)
        return state.withLock { s in
            if let existing = s.pools[key] { return existing }
            s.pools[key] = created
            return created
        }.value
    }

    /// Cumulative request statistics per revision (`""` for backends without one), in first-seen order.
    func revisionTraffic() -> [(revision: String, statistics: RequestStatistics)] {
        state.withLock { s in
            s.revisionSlots.sorted { $0.value < $1.value }.map { ($0.key, s.revisionTraffic[$0.value]) }
        }
    }

    private func allPools() -> [NIOLoopBound<UpstreamPool>] {
        state.withLock { s in Array(s.pools.values) }
    }

    private static func release(_ backend: String, in s: inout State) {
        if let entry = s.backends[backend] { release(entry, in: &s) }
    }

    private static func release(_ backend: Entry, in s: inout State) {
        backend.counters.connectionsActive -= 1
        if let position = backend.position {
            s.snapshots[position.group][position.index].activeConnections -= 1
        } else {
            removeIfUnused(backend.id, in: &s)
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
            if policy != s.policy {
                s.policy = policy
                s.balancers = []
            }
            if configuration.outlierDetection != old.outlierDetection {
                s.detector = OutlierDetector(configuration.outlierDetection ?? OutlierDetection())
            }
            if configuration.http?.retries != old.http?.retries {
                s.retryBudget = RetryBudget(configuration.http?.retries)
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
        for bound in allPools() {
            bound.eventLoop.execute {
                bound.value.backendsChanged(drainTimeout: timeout)
            }
        }
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
    ///
    /// Without a split there is one group of every backend. With one, there is a group per revision of
    /// the split (in split order, with its weight), then one of every other backend.
    @discardableResult
    private static func setBackends(_ backends: [BackendConfiguration], in s: inout State) -> [String] {
        let split = s.configuration.split ?? []
        var groupOf: [String: Int] = [:]
        for (i, entry) in split.enumerated() where groupOf[entry.revision] == nil { groupOf[entry.revision] = i }
        let groupCount = split.isEmpty ? 1 : split.count + 1
        var snapshots = Array(repeating: [BackendSnapshot](), count: groupCount)
        var position: [String: BackendPosition] = [:]
        for backend in backends {
            let id = backend.id
            guard position[id] == nil else { continue }
            if s.backends[id] == nil {
                guard let address = try? SocketAddress(ipAddress: backend.address, port: backend.port) else { continue }
                s.backends[id] = Entry(id: id, address: address)
            }
            let revision = backend.revision ?? ""
            s.backends[id]!.inConfiguration = true
            s.backends[id]!.tunnel = backend.tunnel?.endpoint
            s.backends[id]!.counters.draining = false
            s.backends[id]!.counters.revision = backend.revision
            s.backends[id]!.revision = revision
            s.backends[id]!.revisionSlot = revisionSlot(revision, in: &s)
            let group = split.isEmpty ? 0 : groupOf[revision] ?? split.count
            position[id] = BackendPosition(group: group, index: snapshots[group].count)
            snapshots[group].append(BackendSnapshot(
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
        let weights = split.map(\.weight)
        if s.balancers.count != groupCount || weights != s.weights {
            s.balancers = Array(repeating: LoadBalancer(policy: s.policy), count: groupCount)
        }
        s.weights = weights
        s.snapshots = snapshots
        s.position = position
        for (id, backend) in s.backends { backend.position = position[id] }
        s.backendCount = position.count
        s.order = backends.map(\.id).filter { position[$0] != nil }
        if s.order.count != position.count {
            var seen = Set<String>()
            s.order = s.order.filter { seen.insert($0).inserted }
        }
        return removed
    }

    private static func revisionSlot(_ revision: String, in s: inout State) -> Int {
        if let slot = s.revisionSlots[revision] { return slot }
        s.revisionSlots[revision] = s.revisionTraffic.count
        s.revisionTraffic.append(RequestStatistics())
        return s.revisionTraffic.count - 1
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
        let (channels, pools) = state.withLock { s in
            s.shutDown = true
            return (Self.allChannels(s), Array(s.pools.values))
        }
        for bound in pools {
            bound.eventLoop.execute { bound.value.closeAll() }
        }
        return channels
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
            result.http = s.http
            for id in s.order {
                var counters = s.backends[id]!.counters
                counters.ejected = s.detector.isEjected(id, now: now)
                s.backends[id]!.requests.fill(&counters)
                result.backends.append(counters)
            }
            for (id, backend) in s.backends.sorted(by: { $0.key < $1.key }) where s.position[id] == nil {
                var counters = backend.counters
                backend.requests.fill(&counters)
                result.backends.append(counters)
            }
            return result
        }
    }
}

/// Request counts of one backend or one revision: attempts, responses by status class, failures,
/// retries and a latency histogram (µs, attempt start → response head).
struct RequestStatistics: Sendable {
    var requests = 0
    var responses: (Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0)
    var failures = 0
    var retries = 0
    /// Created on the first response, so listeners in TCP mode carry none.
    var latency: Histogram<UInt64>?

    mutating func record(_ outcome: ListenerRuntime.AttemptOutcome, isRetry: Bool) {
        requests += 1
        if isRetry { retries += 1 }
        switch outcome {
        case .response(let status, let elapsed):
            switch status / 100 {
            case ...1: responses.0 += 1
            case 2: responses.1 += 1
            case 3: responses.2 += 1
            case 4: responses.3 += 1
            default: responses.4 += 1
            }
            let micros = UInt64(max(elapsed.nanoseconds / 1000, 1))
            // Moved out and back, so the histogram is never copied (nor its counts, copy-on-write).
            var histogram = latency.take() ?? LatencySummary.makeHistogram()
            _ = histogram.record(min(micros, LatencySummary.highestTrackableMicroseconds))
            latency = consume histogram
        case .connectFailed, .failed:
            failures += 1
        case .cancelled:
            requests -= 1
            if isRetry { retries -= 1 }
        }
    }

    var responseCounts: [Int] { [responses.0, responses.1, responses.2, responses.3, responses.4] }

    var latencySummary: LatencySummary { latency.map { LatencySummary($0) } ?? LatencySummary() }

    func fill(_ counters: inout BackendCounters) {
        counters.requests = requests
        counters.responses = responseCounts
        counters.requestFailures = failures
        counters.retries = retries
        counters.latency = latencySummary
    }
}
