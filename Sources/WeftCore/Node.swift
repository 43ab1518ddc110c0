/// A machine that runs replicas, registered by its agent.
public struct Node: Resource {
    public static let resourceKind = ResourceKind.node
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: NodeSpec?
    public var status: NodeStatus?

    public init(metadata: ObjectMeta, spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct NodeSpec: Codable, Sendable, Hashable {
    /// Cordoned: the scheduler places no new replicas here.
    public var unschedulable: Bool?
    /// Keep replicas off the node unless they tolerate them.
    public var taints: [Taint]?

    public init(unschedulable: Bool? = nil, taints: [Taint]? = nil) {
        self.unschedulable = unschedulable
        self.taints = taints
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var ready: Bool
    public var addresses: [String]?
    public var capacity: ResourceList?
    /// RFC 3339 time the API server received the agent's last heartbeat (the server's clock, not the node's).
    public var lastHeartbeat: String?
    public var version: String?
    /// `ip:port` of the node proxy's inbound mTLS tunnel port, where other nodes send streams for
    /// this node's replicas; nil when the node runs no tunnel.
    public var tunnel: String?
    /// What the inbound tunnel has done since the agent started.
    public var tunnelCounters: TunnelCounters?
    /// Why the node is not ready (set by the control plane), e.g. `no heartbeat for 5 s`.
    public var message: String?
    /// What the node proxy saw of each version of each HTTP service port since the agent started
    /// (canary analysis reads it).
    public var traffic: [TrafficSample]?
    /// The runtime replicas without `runtime` get on this node (`process` or `netns`).
    public var runtime: String?
    /// The node's pod network for the netns driver, e.g. `10.244.2.0/24`.
    public var podCIDR: String?

    public init(ready: Bool, addresses: [String]? = nil, capacity: ResourceList? = nil, lastHeartbeat: String? = nil, version: String? = nil,
                tunnel: String? = nil, tunnelCounters: TunnelCounters? = nil, message: String? = nil,
                runtime: String? = nil, podCIDR: String? = nil) {
        self.ready = ready
        self.addresses = addresses
        self.capacity = capacity
        self.lastHeartbeat = lastHeartbeat
        self.version = version
        self.tunnel = tunnel
        self.tunnelCounters = tunnelCounters
        self.message = message
        self.runtime = runtime
        self.podCIDR = podCIDR
    }
}

/// Counters of a node's inbound tunnel, reported with each heartbeat.
public struct TunnelCounters: Codable, Sendable, Hashable {
    /// TCP connections accepted on the inbound port.
    public var connections: Int
    /// Connections whose TLS handshake or peer check failed.
    public var handshakeFailures: Int
    /// Streams allowed and connected to a local replica.
    public var streams: Int
    /// Streams refused by authorization.
    public var denied: Int
    /// Streams to no local endpoint, or whose replica did not accept.
    public var failed: Int

    public init(connections: Int, handshakeFailures: Int, streams: Int, denied: Int, failed: Int) {
        self.connections = connections
        self.handshakeFailures = handshakeFailures
        self.streams = streams
        self.denied = denied
        self.failed = failed
    }
}
