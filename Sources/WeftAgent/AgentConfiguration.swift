import Foundation
import WeftCore
import WeftDNS

/// Settings of a node agent.
public struct AgentConfiguration: Sendable {
    /// The node's name in the cluster.
    public var nodeName: String
    /// The address replicas on this node are reachable at (loopback for the process driver).
    public var nodeAddress: String
    /// Where the agent keeps its own state (`processes.json`).
    public var stateDirectory: String
    /// Where replica logs go: `<logDirectory>/<namespace>/<replica>.log`.
    public var logDirectory: String
    /// How often the node's heartbeat is renewed: well under the control plane's node grace (`weft server`
    /// and `weft agent` use a third of it, from the cluster info).
    public var heartbeatInterval: Duration
    /// Directories put in front of `PATH` for replica commands, so `weft-demo` next to `weft` is found.
    public var extraPath: [String]
    /// Labels of the node.
    public var labels: [String: String]
    /// The node's DNS server; nil runs none.
    public var dns: DNSServerConfiguration?
    /// Services are named `<service>.<namespace>.svc.<clusterDomain>`.
    public var clusterDomain: String
    /// TTL of the cluster zone's records and of its negative answers.
    public var dnsTTL: UInt32
    /// SPIFFE trust domain of the node's certificate (`spiffe://<trustDomain>/node/<name>`); nil: the
    /// agent asks for none.
    public var trustDomain: String?
    /// Port of the inbound mTLS tunnel on `nodeAddress` (0 picks a free one); nil runs no tunnel, and
    /// other nodes then reach this node's replicas directly.
    public var tunnelPort: Int?
    /// How often the node checks the mesh's trust roots for a rotation step.
    public var trustRefreshInterval: Duration = .seconds(5)
    /// How long a ready replica that is being deleted keeps running before SIGTERM: it has already left its
    /// services' endpoints, and this gives every node proxy time to stop sending it new requests.
    public var drainDelay: Duration = .seconds(1)
    /// How often a replica waiting for a missing ConfigMap or Secret reads it again.
    public var configRetry: Duration = .seconds(2)
    /// The capacity the node registers; nil: the machine's processors and memory.
    public var capacity: ResourceList?
    /// Whether the node proxy binds a listener on each service VIP. Off for a second agent on a machine
    /// whose VIPs another agent already serves (they are the same addresses); DNS is served either way.
    public var serviceListeners: Bool
    /// The runtime of replicas whose template names none.
    public var runtime: WorkloadRuntime = .process
    /// The node's pod network, needed by the netns driver: the bridge `weft0` gets its first address.
    public var podNetwork: PodNetwork?
    /// The cluster's VIP block; with the netns driver and a block outside 127.0.0.0/8 it is made local to
    /// the node, so replicas reach the node proxy's VIP listeners through the bridge.
    public var serviceBlock: IPv4CIDR?

    public init(nodeName: String, nodeAddress: String = "127.0.0.1", stateDirectory: String, logDirectory: String,
                heartbeatInterval: Duration = .seconds(1), extraPath: [String] = [], labels: [String: String] = [:],
                dns: DNSServerConfiguration? = nil, clusterDomain: String = "weft.internal", dnsTTL: UInt32 = 5,
                trustDomain: String? = nil, tunnelPort: Int? = nil, capacity: ResourceList? = nil, serviceListeners: Bool = true) {
        self.nodeName = nodeName
        self.nodeAddress = nodeAddress
        self.stateDirectory = stateDirectory
        self.logDirectory = logDirectory
        self.heartbeatInterval = heartbeatInterval
        self.extraPath = extraPath
        self.labels = labels
        self.dns = dns
        self.clusterDomain = clusterDomain
        self.dnsTTL = dnsTTL
        self.trustDomain = trustDomain
        self.tunnelPort = tunnelPort
        self.capacity = capacity
        self.serviceListeners = serviceListeners
    }

    /// Where the node's key, certificate and trust bundle are kept.
    public var identityDirectory: String {
        (stateDirectory as NSString).appendingPathComponent("identity")
    }

    /// The node's container images (oci runtime), which `weft image` manages: `<stateDirectory>/images`.
    public var imageDirectory: String { Self.imageDirectory(stateDirectory: stateDirectory) }

    /// The image directory of an agent whose state directory is `stateDirectory`.
    public static func imageDirectory(stateDirectory: String) -> String {
        (stateDirectory as NSString).appendingPathComponent("images")
    }

    /// The log directory of one namespace.
    public func logDirectory(namespace: String) -> String {
        (logDirectory as NSString).appendingPathComponent(namespace)
    }
}
