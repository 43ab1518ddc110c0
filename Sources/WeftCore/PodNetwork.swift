/// The workload drivers a node can run a replica with (`spec.template.spec.runtime`).
public enum WorkloadRuntime: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// A plain process on the node's network; each declared port gets a host port. Needs no privileges.
    case process
    /// A process in a network namespace of its own, with an IP from the node's pod CIDR on the node
    /// bridge. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
    case netns
    /// A container run by runc from an imported image or a root filesystem directory, in a network
    /// namespace of the netns driver, with cgroup CPU and memory limits. Needs root and runc.
    case oci

    public var description: String { rawValue }

    /// Why `text` is not a runtime this version runs, or nil when it is one.
    public static func problem(_ text: String) -> String? {
        if WorkloadRuntime(rawValue: text) != nil { return nil }
        return "must be process, netns or oci, got \"\(text)\""
    }
}

/// A node's block of replica addresses for the netns driver, such as `10.244.2.0/24`: the first usable
/// address belongs to the node bridge (the replicas' gateway and DNS server), the others to replicas.
public struct PodNetwork: Sendable, Hashable, CustomStringConvertible {
    public let block: IPv4CIDR

    /// Parses `a.b.c.d/n` with a prefix of 8 to 29 (room for the gateway and at least five replicas);
    /// nil otherwise.
    public init?(_ text: String) {
        guard let block = IPv4CIDR(text), block.prefixLength <= 29, !block.isLoopback else { return nil }
        self.block = block
    }

    /// Why `text` cannot be a pod CIDR, for the `--pod-cidr` flag; nil when it can.
    public static func problem(_ text: String) -> String? {
        guard let block = IPv4CIDR(text) else {
            return "\"\(text)\" is not an IPv4 block such as 10.244.1.0/24 (prefix 8 to 29, host bits zero)"
        }
        if block.isLoopback { return "\"\(text)\" lies in 127.0.0.0/8, which never leaves a network namespace; use a private block such as 10.244.1.0/24" }
        if block.prefixLength > 29 { return "\"\(text)\" is too small; use a prefix of 29 or shorter (a /24 holds 253 replicas)" }
        return nil
    }

    /// The node bridge's address: the replicas' default gateway and where their DNS queries go.
    public var gateway: IPv4Address { IPv4Address(value: block.network + 1) }

    /// The prefix length the bridge and each replica's interface carry.
    public var prefixLength: Int { block.prefixLength }

    /// Number of addresses replicas can get: all but network, gateway and broadcast.
    public var replicaCapacity: Int { block.capacity - 1 }

    /// Whether `address` is one a replica may hold (inside the block, not network, gateway or broadcast).
    public func isReplicaAddress(_ address: IPv4Address) -> Bool {
        guard let index = block.index(of: address.description) else { return false }
        return index >= 1
    }

    public var description: String { block.description }
}

/// What the agent records for one replica address: who holds it and the namespace and interface made
/// for it, so that the next agent can remove them after a crash.
public struct PodAllocation: Codable, Sendable, Hashable {
    /// `namespace/name` of the replica.
    public var replica: String
    /// The network namespace (`ip netns` name).
    public var sandbox: String
    /// The node-side end of the replica's veth pair, plugged into the bridge.
    public var hostInterface: String

    public init(replica: String, sandbox: String, hostInterface: String) {
        self.replica = replica
        self.sandbox = sandbox
        self.hostInterface = hostInterface
    }
}

/// Which replica holds which address of a node's pod network, as persisted in the agent's state
/// directory. Addresses are handed out in turn after the last one given, so a restarted replica gets
/// a different address while others are free, and one that is still recorded is never handed out.
public struct PodAddressBook: Codable, Sendable, Hashable {
    /// Held addresses, by address text.
    public private(set) var allocations: [String: PodAllocation]
    /// The address handed out last; the next search starts after it.
    public private(set) var last: String?

    public init(allocations: [String: PodAllocation] = [:], last: String? = nil) {
        self.allocations = allocations
        self.last = last
    }

    /// Takes a free replica address of `network` for `replica`, with the sandbox names `names(address)`.
    /// Throws when every address is held.
    public mutating func allocate(in network: PodNetwork, replica: String,
                                  names: (IPv4Address) -> PodSandboxNames) throws -> (IPv4Address, PodAllocation) {
        let capacity = network.replicaCapacity
        // Replica addresses are the block's usable indexes 1 ..< capacity + 1 (index 0 is the gateway).
        let start: Int
        if let last, let index = network.block.index(of: last), index >= 1 {
            start = index % capacity  // the slot after `last`, in 0-based replica slots
        } else {
            start = 0
        }
        for step in 0..<capacity {
            let slot = (start + step) % capacity
            let address = IPv4Address(value: network.block.network + UInt32(slot + 2))
            let text = address.description
            guard allocations[text] == nil else { continue }
            let sandbox = names(address)
            let allocation = PodAllocation(replica: replica, sandbox: sandbox.namespace, hostInterface: sandbox.hostInterface)
            allocations[text] = allocation
            last = text
            return (address, allocation)
        }
        throw PodNetworkError(
            "no free address in pod network \(network) for \(replica): all \(capacity) replica addresses are in use; give the node a larger --pod-cidr")
    }

    /// Frees `address`; returns what was recorded for it.
    @discardableResult
    public mutating func release(_ address: String) -> PodAllocation? {
        allocations.removeValue(forKey: address)
    }
}

/// A pod network that cannot serve a request, with what to do about it.
public struct PodNetworkError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The names of what the netns driver creates for one replica incarnation, derived from a hash of the
/// node, the replica and its address: short enough for Linux interface names (at most 15 bytes) and
/// recognisable as Weft's (`weft-…` namespaces, `wv…` interfaces).
public struct PodSandboxNames: Sendable, Hashable {
    /// The network namespace, `weft-` and 10 hex digits.
    public let namespace: String
    /// The node-side veth end, `wv` and 10 hex digits (12 bytes).
    public let hostInterface: String
    /// The replica-side veth end inside its namespace.
    public static let replicaInterface = "eth0"
    /// Prefix of every namespace the driver creates.
    public static let namespacePrefix = "weft-"
    /// Prefix of every node-side interface the driver creates.
    public static let hostInterfacePrefix = "wv"

    public init(node: String, replica: String, address: IPv4Address) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(node)/\(replica)@\(address)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash & 0xff_ffff_ffff, radix: 16)
        let digits = String(repeating: "0", count: 10 - hex.count) + hex
        namespace = Self.namespacePrefix + digits
        hostInterface = Self.hostInterfacePrefix + digits
    }
}

/// The `/etc/resolv.conf` a replica in its own network namespace sees.
public enum PodResolvConf {
    /// Asks the node DNS at `nameserver` (port 53: resolv.conf has no port) and searches the replica's
    /// namespace first, so that `getaddrinfo("cart")` finds `cart.<namespace>.svc.<clusterDomain>`.
    /// `ndots:5` as Kubernetes: names with fewer dots try the search list first.
    public static func text(nameserver: IPv4Address, namespace: String, clusterDomain: String) -> String {
        """
        # Written by the Weft agent for a replica in namespace \(namespace).
        nameserver \(nameserver)
        search \(namespace).svc.\(clusterDomain) svc.\(clusterDomain) \(clusterDomain)
        options ndots:5 timeout:2 attempts:2

        """
    }
}
