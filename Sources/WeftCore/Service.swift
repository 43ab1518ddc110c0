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
    /// How the node proxy spreads connections over the endpoints; `p2cEwma` when absent.
    public var loadBalancer: LoadBalancerPolicy?

    public init(selector: [String: String]? = nil, ports: [ServicePort], type: String? = nil, clusterIP: String? = nil, loadBalancer: LoadBalancerPolicy? = nil) {
        self.selector = selector
        self.ports = ports
        self.type = type
        self.clusterIP = clusterIP
        self.loadBalancer = loadBalancer
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

    public init(name: String? = nil, port: Int, targetPort: PortReference? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
    }
}
