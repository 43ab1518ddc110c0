import WeftCore
import WeftPKI

/// What the node proxy listens on and where each listener sends its connections.
///
/// The same shape is read by `weft proxy --config FILE` (YAML or JSON) and built by the node agent.
public struct ProxyConfiguration: Codable, Sendable, Equatable {
    public var listeners: [ListenerConfiguration]

    public init(listeners: [ListenerConfiguration] = []) {
        self.listeners = listeners
    }

    /// Every problem with the configuration, each with its field path (`listeners[0].port: ...`).
    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let root = FieldPath() / "listeners"
        var names: [String: Int] = [:]
        var endpoints: [String: Int] = [:]
        for (i, listener) in listeners.enumerated() {
            errors += listener.validate(at: root[i])
            if let first = names[listener.name] {
                errors.append((root[i] / "name").error("duplicate listener name \"\(listener.name)\" (also listeners[\(first)])"))
            } else {
                names[listener.name] = i
            }
            let endpoint = ListenerConfiguration.endpointText(listener.address, listener.port)
            if let first = endpoints[endpoint] {
                errors.append((root[i] / "port").error("\(endpoint) is already used by listeners[\(first)]; each listener needs its own address and port"))
            } else {
                endpoints[endpoint] = i
            }
        }
        return errors
    }
}

/// One listening address and the backends its connections are balanced over.
public struct ListenerConfiguration: Codable, Sendable, Equatable {
    /// A label for logs and counters, e.g. `default/cart:http`.
    public var name: String
    /// The IP address to bind (an IPv4 or IPv6 literal).
    public var address: String
    public var port: Int
    /// How a backend is chosen for each new connection; default `p2cEwma`.
    public var loadBalancer: LoadBalancerPolicy?
    public var backends: [BackendConfiguration]
    /// Time allowed for a TCP connect to a backend; default 1000.
    public var connectTimeoutMs: Int?
    /// A connection with no bytes in either direction for this long is closed; default 300000.
    public var idleTimeoutMs: Int?
    /// Open connections allowed on this listener; over it new connections are closed at once. Default 10000.
    public var maxConnections: Int?
    /// Backends tried per connection when connecting fails or times out (before any byte is sent); default 3.
    public var connectAttempts: Int?
    /// How long a removed backend (or listener) keeps its open connections before they are closed; default 30000.
    public var drainTimeoutMs: Int?
    /// Ejects backends that keep failing to accept connections; default on, with `OutlierDetection()`'s settings.
    public var outlierDetection: OutlierDetection?
    /// `tcp` (default): each connection goes to one backend (L4). `http`: HTTP/1.1 is parsed and each
    /// request is balanced, over pooled keep-alive connections, with retries and per-version metrics (L7).
    public var `protocol`: ListenerProtocol?
    /// Request timeout and retries in `http` mode.
    public var http: HTTPRouteSettings?
    /// Shares of requests (connections in `tcp` mode) per backend `revision`: a revision is chosen by these
    /// weights first, then a backend of it by the load balancer. Revisions with no usable backend are skipped.
    public var split: [TrafficWeight]?
    /// The service this listener serves (`namespace/name`), under which its traffic is reported.
    public var service: String?

    public static let defaultLoadBalancer = LoadBalancerPolicy.default
    public static let defaultConnectTimeoutMs = 1000
    public static let defaultIdleTimeoutMs = 300_000
    public static let defaultMaxConnections = 10_000
    public static let defaultConnectAttempts = 3
    public static let defaultDrainTimeoutMs = 30_000

    public init(
        name: String, address: String, port: Int, loadBalancer: LoadBalancerPolicy? = nil,
        backends: [BackendConfiguration], connectTimeoutMs: Int? = nil, idleTimeoutMs: Int? = nil,
        maxConnections: Int? = nil, connectAttempts: Int? = nil, drainTimeoutMs: Int? = nil,
        outlierDetection: OutlierDetection? = nil, protocol: ListenerProtocol? = nil, http: HTTPRouteSettings? = nil,
        split: [TrafficWeight]? = nil, service: String? = nil
    ) {
        self.name = name
        self.address = address
        self.port = port
        self.loadBalancer = loadBalancer
        self.backends = backends
        self.connectTimeoutMs = connectTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.maxConnections = maxConnections
        self.connectAttempts = connectAttempts
        self.drainTimeoutMs = drainTimeoutMs
        self.outlierDetection = outlierDetection
        self.protocol = `protocol`
        self.http = http
        self.split = split
        self.service = service
    }

    enum CodingKeys: String, CodingKey {
        case name, address, port, loadBalancer, backends, connectTimeoutMs, idleTimeoutMs, maxConnections
        case connectAttempts, drainTimeoutMs, outlierDetection, `protocol`, http, split, service
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try c.decode(String.self, forKey: .name)
        self.address = try c.decode(String.self, forKey: .address)
        self.port = try c.decode(Int.self, forKey: .port)
        self.loadBalancer = try c.decodeIfPresent(LoadBalancerPolicy.self, forKey: .loadBalancer)
        self.backends = try c.decode([BackendConfiguration].self, forKey: .backends)
        self.connectTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMs)
        self.idleTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMs)
        self.maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections)
        self.connectAttempts = try c.decodeIfPresent(Int.self, forKey: .connectAttempts)
        self.drainTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .drainTimeoutMs)
        self.outlierDetection = try c.decodeIfPresent(OutlierDetection.self, forKey: .outlierDetection)
        self.protocol = try c.decodeIfPresent(ListenerProtocol.self, forKey: .protocol)
        self.http = try c.decodeIfPresent(HTTPRouteSettings.self, forKey: .http)
        self.split = try c.decodeIfPresent([TrafficWeight].self, forKey: .split)
        self.service = try c.decodeIfPresent(String.self, forKey: .service)
    }

    /// `protocol`, or `tcp`.
    public var resolvedProtocol: ListenerProtocol { self.protocol ?? .tcp }

    /// `address:port`, with IPv6 addresses in brackets.
    public var endpoint: String { Self.endpointText(address, port) }

    static func endpointText(_ address: String, _ port: Int) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    func validate(at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if name.isEmpty { errors.append((path / "name").error("must not be empty")) }
        if !IPAddressText.isValid(address) {
            errors.append((path / "address").error("must be an IPv4 or IPv6 address, got \"\(address)\""))
        }
        if !(1...65535).contains(port) { errors.append((path / "port").error("must be between 1 and 65535")) }
        var seen: [String: Int] = [:]
        for (i, backend) in backends.enumerated() {
            errors += backend.validate(at: (path / "backends")[i])
            if let first = seen[backend.id] {
                errors.append(((path / "backends")[i]).error("duplicate backend \(backend.id) (also backends[\(first)])"))
            } else {
                seen[backend.id] = i
            }
        }
        func positive(_ value: Int?, _ field: String) {
            if let value, value <= 0 { errors.append((path / field).error("must be greater than 0")) }
        }
        positive(connectTimeoutMs, "connectTimeoutMs")
        positive(idleTimeoutMs, "idleTimeoutMs")
        positive(maxConnections, "maxConnections")
        positive(drainTimeoutMs, "drainTimeoutMs")
        if let connectAttempts, connectAttempts < 1 {
            errors.append((path / "connectAttempts").error("must be at least 1"))
        }
        if let outlier = outlierDetection {
            let o = path / "outlierDetection"
            if outlier.consecutiveFailures < 0 { errors.append((o / "consecutiveFailures").error("must be 0 (off) or more")) }
            if !(outlier.baseEjectionSeconds > 0) || !outlier.baseEjectionSeconds.isFinite { errors.append((o / "baseEjectionSeconds").error("must be a number greater than 0")) }
            if !(outlier.maxEjectionSeconds > 0) || !outlier.maxEjectionSeconds.isFinite { errors.append((o / "maxEjectionSeconds").error("must be a number greater than 0")) }
            if outlier.maxEjectionSeconds < outlier.baseEjectionSeconds {
                errors.append((o / "maxEjectionSeconds").error("must not be less than baseEjectionSeconds"))
            }
            if !(0...100).contains(outlier.maxEjectedPercent) {
                errors.append((o / "maxEjectedPercent").error("must be between 0 and 100"))
            }
        }
        errors += validateTraffic(at: path)
        return errors
    }

    /// `http`, `split` and `service`. A split may name revisions no backend has yet (a rollout adds
    /// them later); those simply take no traffic until they do.
    private func validateTraffic(at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if let http {
            let h = path / "http"
            if resolvedProtocol != .http {
                errors.append(h.error("applies only to HTTP listeners; set protocol: http or remove it"))
            }
            if let timeout = http.timeoutMs, timeout <= 0 { errors.append((h / "timeoutMs").error("must be greater than 0")) }
            if let retries = http.retries {
                let r = h / "retries"
                if let attempts = retries.attempts, !(0...10).contains(attempts) {
                    errors.append((r / "attempts").error("must be between 0 (no retries) and 10"))
                }
                if let percent = retries.budgetPercent, !(0...100).contains(percent) {
                    errors.append((r / "budgetPercent").error("must be between 0 and 100"))
                }
                if let minimum = retries.minRetriesPerSecond, minimum < 0 {
                    errors.append((r / "minRetriesPerSecond").error("must be 0 or more"))
                }
            }
        }
        if let split {
            var seen: [String: Int] = [:]
            for (i, entry) in split.enumerated() {
                let e = (path / "split")[i]
                if entry.revision.isEmpty { errors.append((e / "revision").error("must not be empty")) }
                if let first = seen[entry.revision] {
                    errors.append((e / "revision").error("duplicate revision \"\(entry.revision)\" (also split[\(first)])"))
                } else {
                    seen[entry.revision] = i
                }
                if !(0...100).contains(entry.weight) { errors.append((e / "weight").error("must be between 0 and 100")) }
            }
            if !split.isEmpty, split.allSatisfy({ $0.weight == 0 }) {
                errors.append((path / "split").error("at least one revision needs a weight greater than 0"))
            }
        }
        if let service {
            let parts = service.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count != 2 || parts.contains(where: \.isEmpty) {
                errors.append((path / "service").error("must be namespace/name, got \"\(service)\""))
            }
        }
        return errors
    }
}

/// A backend of a listener: an IP address and port, and its share of new connections.
public struct BackendConfiguration: Codable, Sendable, Equatable, Hashable {
    /// An IPv4 or IPv6 literal.
    public var address: String
    public var port: Int
    /// Relative share of new connections; 0 takes none. Default 100.
    public var weight: Int?
    /// Reach the backend through another node's mTLS tunnel rather than directly.
    public var tunnel: TunnelConfiguration?
    /// The version the backend runs (a template hash): the listener's `split` and its traffic
    /// counters go by it.
    public var revision: String?

    public static let defaultWeight = 100

    public init(address: String, port: Int, weight: Int? = nil, tunnel: TunnelConfiguration? = nil, revision: String? = nil) {
        self.address = address
        self.port = port
        self.weight = weight
        self.tunnel = tunnel
        self.revision = revision
    }

    /// The backend's identity in counters and load balancing: `address:port`.
    public var id: String { ListenerConfiguration.endpointText(address, port) }

    func validate(at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if !IPAddressText.isValid(address) {
            errors.append((path / "address").error("must be an IPv4 or IPv6 address, got \"\(address)\""))
        }
        if !(1...65535).contains(port) { errors.append((path / "port").error("must be between 1 and 65535")) }
        if let weight, weight < 0 { errors.append((path / "weight").error("must be 0 or more")) }
        if let tunnel { errors += tunnel.validate(at: path / "tunnel") }
        return errors
    }
}

/// How a listener reads its connections.
public enum ListenerProtocol: String, Codable, Sendable, CaseIterable {
    /// Bytes are spliced to one backend per connection.
    case tcp
    /// HTTP/1.1 requests are balanced one by one.
    case http
}

/// The node a backend is reached through: its proxy's inbound tunnel port and the SPIFFE ID its
/// certificate must carry. The proxy opens an HTTP/2 CONNECT stream there for each connection.
public struct TunnelConfiguration: Codable, Sendable, Equatable, Hashable {
    /// `ip:port` of the node's inbound tunnel port (IPv6 in brackets).
    public var address: String
    /// The node's SPIFFE ID, `spiffe://<trust-domain>/node/<name>`.
    public var identity: String

    public init(address: String, identity: String) {
        self.address = address
        self.identity = identity
    }

    func validate(at path: FieldPath) -> [FieldError] {
        var errors: [FieldError] = []
        if InboundService.address(address) == nil {
            errors.append((path / "address").error("must be IP:PORT (IPv6 in brackets), got \"\(address)\""))
        }
        do {
            if try SPIFFEID(parsing: identity).nodeName == nil {
                errors.append((path / "identity").error("must be a node SPIFFE ID, spiffe://<trust-domain>/node/<name>"))
            }
        } catch {
            errors.append((path / "identity").error("\(error)"))
        }
        return errors
    }

    var endpoint: TunnelEndpoint? {
        guard let address = InboundService.address(address), let id = try? SPIFFEID(parsing: identity) else { return nil }
        return TunnelEndpoint(address: address, identity: id)
    }
}

/// A configuration that cannot be applied: every problem with its field path, or the listener whose
/// address could not be bound.
public struct ProxyConfigurationError: Error, Sendable, CustomStringConvertible {
    public var problems: [FieldError]

    public init(problems: [FieldError]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

extension ProxyConfiguration {
    /// Decodes a configuration document (parsed YAML or JSON) strictly and validates it: unknown
    /// fields, type errors and every rule break are reported with their field paths.
    public static func decode(_ document: JSONValue) throws(ProxyConfigurationError) -> ProxyConfiguration {
        let configuration: ProxyConfiguration
        do {
            configuration = try StrictDecoder.decode(ProxyConfiguration.self, from: document)
        } catch {
            var problem = error
            if problem.message.hasPrefix("unknown field") {
                problem.message = "unknown field; check its spelling and indentation against proxy-config/README.md"
            }
            throw ProxyConfigurationError(problems: [problem])
        }
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ProxyConfigurationError(problems: problems) }
        return configuration
    }
}
