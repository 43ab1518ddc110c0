/// A stable name (and, with type VIP, a virtual IP) for the ready replicas its selector matches.
public struct Service: Resource {
    public static let resourceKind = ResourceKind.service
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: ServiceSpec

    public init(metadata: ObjectMeta, spec: ServiceSpec) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
    }
}

public struct ServiceSpec: Codable, Sendable, Hashable {
    public var selector: [String: String]?
    public var ports: [ServicePort]
    /// `VIP` (default) or `Headless`.
    public var type: String?
    /// The virtual IP, assigned by the server for VIP services.
    public var clusterIP: String?
    /// How the node proxy spreads connections (requests, on HTTP ports) over the endpoints; `p2cEwma`
    /// when absent.
    public var loadBalancer: LoadBalancerPolicy?
    /// Timeouts and retries of the ports with `appProtocol: http`.
    public var http: HTTPRouteSettings?

    public init(selector: [String: String]? = nil, ports: [ServicePort], type: String? = nil, clusterIP: String? = nil,
                loadBalancer: LoadBalancerPolicy? = nil, http: HTTPRouteSettings? = nil) {
        self.selector = selector
        self.ports = ports
        self.type = type
        self.clusterIP = clusterIP
        self.loadBalancer = loadBalancer
        self.http = http
    }

    public var serviceType: ServiceType { ServiceType(rawValue: type ?? "") ?? .vip }

    /// The load-balancing policy in effect: `loadBalancer`, or the default.
    public var loadBalancerPolicy: LoadBalancerPolicy { loadBalancer ?? .default }
}

public enum ServiceType: String, Sendable, CaseIterable {
    case vip = "VIP"
    case headless = "Headless"
}

public struct ServicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var port: Int
    /// The replica port, by number or by name; defaults to `port`.
    public var targetPort: PortReference?
    /// `TCP` (default) or `UDP`.
    public var `protocol`: String?
    /// `http`: the node proxy parses HTTP/1.1 and balances each request (L7 mode: pooled connections,
    /// retries, per-version metrics, exact canary weights); `tcp` (default): each connection (L4).
    public var appProtocol: String?

    public init(name: String? = nil, port: Int, targetPort: PortReference? = nil, protocol: String? = nil, appProtocol: String? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
        self.appProtocol = appProtocol
    }

    /// Whether the port is balanced per request (`appProtocol: http`).
    public var isHTTP: Bool { appProtocol?.lowercased() == "http" }
}

/// Timeouts and retries for a service's HTTP ports, applied by every node proxy.
public struct HTTPRouteSettings: Codable, Sendable, Hashable {
    /// Time from sending a request to receiving the whole response head; default 15000. A request that
    /// times out gets 504.
    public var timeoutMs: Int?
    /// Retries of idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) that failed to connect, lost their
    /// connection before any response byte, or got a 503 from a draining endpoint.
    public var retries: RetryPolicy?

    public init(timeoutMs: Int? = nil, retries: RetryPolicy? = nil) {
        self.timeoutMs = timeoutMs
        self.retries = retries
    }

    public static let defaultTimeoutMs = 15_000
}

/// A retry budget, like Linkerd's: retries may add at most `budgetPercent` of the requests of the last
/// 10 s, plus `minRetriesPerSecond`, so retries cannot multiply the load of an overloaded service.
public struct RetryPolicy: Codable, Sendable, Hashable {
    /// Tries per request after the first; default 2.
    public var attempts: Int?
    /// Default 20.
    public var budgetPercent: Int?
    /// Default 10.
    public var minRetriesPerSecond: Int?

    public init(attempts: Int? = nil, budgetPercent: Int? = nil, minRetriesPerSecond: Int? = nil) {
        self.attempts = attempts
        self.budgetPercent = budgetPercent
        self.minRetriesPerSecond = minRetriesPerSecond
    }

    public static let defaultAttempts = 2
    public static let defaultBudgetPercent = 20
    public static let defaultMinRetriesPerSecond = 10
}
