/// Per-service choice of load-balancing algorithm (`spec.loadBalancer` of a Service; default `p2cEwma`).
public enum LoadBalancerPolicy: String, Codable, Sendable, CaseIterable {
    /// Smooth weighted round-robin (nginx): deterministic, exactly proportional to weight over a cycle.
    case roundRobin
    /// Fewest active connections per unit of weight; ties broken by weighted random choice.
    case leastConnections
    /// Power of two choices on latency EWMA × (active + 1) / weight (Linkerd's default).
    case p2cEwma
    /// Consistent hashing of the client key onto a ring of virtual nodes (client affinity).
    case ringHash
    /// Weighted random.
    case random

    /// The policy used when a Service does not name one.
    public static let `default` = LoadBalancerPolicy.p2cEwma

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let policy = LoadBalancerPolicy(rawValue: text) else {
            let names = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of \(names), got \"\(text)\"")
        }
        self = policy
    }
}

/// What a picker knows of one backend at the moment of a pick.
public struct BackendSnapshot: Sendable, Hashable {
    /// Stable identity, e.g. `"127.0.0.1:41234"`.
    public var id: String
    /// Relative share of new traffic, >= 0; 0 means no new traffic. Callers default to 100.
    public var weight: Int
    /// Connections (or requests) currently open to this backend through this proxy.
    public var activeConnections: Int
    /// EWMA of connect/first-byte latency in seconds; nil when not yet known.
    public var latency: Double?

    public init(id: String, weight: Int = 100, activeConnections: Int = 0, latency: Double? = nil) {
        self.id = id
        self.weight = weight
        self.activeConnections = activeConnections
        self.latency = latency
    }
}
