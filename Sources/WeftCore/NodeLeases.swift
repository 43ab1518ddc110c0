/// The control plane's view of node leases: when each node's lease runs out, judged only by when the
/// control plane itself saw a new heartbeat, on its own monotonic clock. Pure: the caller passes every
/// instant, so tests drive it without waiting.
///
/// A node's heartbeat is the `status.lastHeartbeat` its agent renews; a changed value renews the lease for
/// `grace`. Nodes already registered when the control plane starts get `startupGrace` (at least `grace`)
/// before they can expire, so a restart of the control plane (or of a whole machine, where the agent
/// starts a little later) marks nothing NotReady that is merely catching up. Only ready nodes expire; a
/// NotReady node becomes ready again through its agent's next heartbeat.
public struct NodeLeases<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    public let grace: Duration
    public let startupGrace: Duration

    struct Lease: Sendable {
        var heartbeat: String?
        var ready: Bool
        /// When the control plane last saw the heartbeat change (or first saw the node).
        var renewed: Instant
        var expires: Instant
    }

    private var leases: [String: Lease] = [:]

    public init(grace: Duration, startupGrace: Duration? = nil) {
        self.grace = grace
        self.startupGrace = max(grace, startupGrace ?? grace)
    }

    /// Records the nodes that exist when the control plane starts.
    public mutating func start(with nodes: [(name: String, heartbeat: String?, ready: Bool)], at now: Instant) {
        for node in nodes {
            leases[node.name] = Lease(heartbeat: node.heartbeat, ready: node.ready, renewed: now, expires: now.advanced(by: startupGrace))
        }
    }

    /// Records a node as stored now (created or changed). A new node, a new heartbeat, or the node turning
    /// ready renews the lease; any other change (a cordon, the node marked NotReady) does not. Returns whether the node's
    /// readiness or its deadline moved earlier than it was, i.e. whether a timer set for
    /// ``nextExpiry`` must be set again.
    @discardableResult
    public mutating func observe(node name: String, heartbeat: String?, ready: Bool, at now: Instant) -> Bool {
        guard var lease = leases[name] else {
            leases[name] = Lease(heartbeat: heartbeat, ready: ready, renewed: now, expires: now.advanced(by: grace))
            return true
        }
        let readinessChanged = lease.ready != ready
        let previous = lease.expires
        // A node that turns ready again did so by a heartbeat, whatever it carries.
        if heartbeat != lease.heartbeat || (ready && !lease.ready) {
            lease.heartbeat = heartbeat
            lease.renewed = now
            lease.expires = now.advanced(by: grace)
        }
        lease.ready = ready
        leases[name] = lease
        return readinessChanged || lease.expires < previous
    }

    /// The node is gone.
    public mutating func remove(node name: String) {
        leases[name] = nil
    }

    /// Ready nodes whose lease ran out at or before `now`, by name, with the heartbeat that was last seen
    /// (to check against the stored node before marking it, in case a heartbeat arrived meanwhile).
    public func expired(at now: Instant) -> [(name: String, heartbeat: String?, silentFor: Duration)] {
        leases.filter { $0.value.ready && $0.value.expires <= now }
            .sorted { $0.key < $1.key }
            .map { ($0.key, $0.value.heartbeat, $0.value.renewed.duration(to: now)) }
    }

    /// Records that `name` was marked NotReady, so it is not reported as expired again.
    public mutating func markedNotReady(_ name: String) {
        leases[name]?.ready = false
    }

    /// The earliest instant a ready node's lease runs out; nil when no ready node holds one.
    public var nextExpiry: Instant? {
        leases.values.filter(\.ready).map(\.expires).min()
    }

    /// Whether `name` is ready as far as the leases know.
    public func isReady(_ name: String) -> Bool? { leases[name]?.ready }
}
