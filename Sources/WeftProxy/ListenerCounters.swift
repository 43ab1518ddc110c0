import WeftCore

/// Counters of one listener since it started listening.
public struct ListenerCounters: Sendable, Equatable {
    public var name: String
    /// `address:port` as configured.
    public var endpoint: String
    /// Connections accepted and handed to a backend (refused ones are not counted here).
    public var connectionsTotal: Int
    /// Connections open now, including those still connecting to a backend.
    public var connectionsActive: Int
    /// Connections closed at once because the listener was at `maxConnections`.
    public var connectionsRefused: Int
    /// Connections closed because no backend could be connected within `connectAttempts`.
    public var connectionsFailed: Int
    /// Current backends in configuration order, then removed backends that still drain connections.
    public var backends: [BackendCounters]
    /// Requests of a listener in `http` mode (all zero in `tcp` mode).
    public var http = HTTPListenerCounters()

    public init(name: String, endpoint: String, connectionsTotal: Int = 0, connectionsActive: Int = 0,
                connectionsRefused: Int = 0, connectionsFailed: Int = 0, backends: [BackendCounters] = []) {
        self.name = name
        self.endpoint = endpoint
        self.connectionsTotal = connectionsTotal
        self.connectionsActive = connectionsActive
        self.connectionsRefused = connectionsRefused
        self.connectionsFailed = connectionsFailed
        self.backends = backends
    }
}

/// Counters of one backend of a listener.
public struct BackendCounters: Sendable, Equatable {
    /// `address:port`.
    public var id: String
    /// Connections established to this backend.
    public var connectionsTotal: Int = 0
    /// Connections open now, including connects in progress.
    public var connectionsActive: Int = 0
    /// Bytes received from clients and sent to this backend. Open connections report in steps of at
    /// most 256 KiB or one idle-check period, so the count can lag slightly.
    public var bytesIn: Int = 0
    /// Bytes received from this backend and sent to clients (same reporting as `bytesIn`).
    public var bytesOut: Int = 0
    /// Connects that failed or timed out.
    public var connectFailures: Int = 0
    /// Times outlier detection ejected this backend.
    public var ejections: Int = 0
    /// Ejected now by outlier detection.
    public var ejected: Bool = false
    /// Removed from the configuration; its open connections close when the drain timeout ends.
    public var draining: Bool = false
    /// The backend's `revision` as configured.
    public var revision: String?

    // In `http` mode connections count upstream connections opened and requests in flight
    // (`connectionsActive`); the counts below are per request attempt.

    /// Request attempts sent to (or tried on) this backend, retries included.
    public var requests: Int = 0
    /// Responses by status class: index 0 is 1xx, …, 4 is 5xx.
    public var responses: [Int] = [0, 0, 0, 0, 0]
    /// Attempts that got no response: connect failure, connection closed or reset, timeout.
    public var requestFailures: Int = 0
    /// Attempts that were retries of an earlier attempt.
    public var retries: Int = 0
    /// Attempt start (first byte sent, or the connect) to response head, in µs.
    public var latency = LatencySummary()

    public init(id: String) { self.id = id }
}

/// Requests of an `http` listener as a whole, counted once per client request (not per attempt).
public struct HTTPListenerCounters: Sendable, Equatable {
    /// Requests read from clients and handed to the balancer.
    public var requestsTotal: Int = 0
    /// Answered 503 by the proxy: no backend to send them to.
    public var noBackend: Int = 0
    /// Answered 502 by the proxy: every attempt failed.
    public var failed: Int = 0
    /// Answered 504 by the proxy: no response head within `http.timeoutMs`.
    public var timedOut: Int = 0
    /// Answered 400 by the proxy: the request could not be parsed.
    public var malformed: Int = 0
    /// Answered 403 by the proxy: the destination node's authorization refused the caller.
    public var denied: Int = 0
    /// Retries that the retry budget refused.
    public var retriesRefused: Int = 0

    public init() {}
}
