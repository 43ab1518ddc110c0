/// An IPv4 address block such as `127.10.0.0/16`, for allocating service virtual IPs.
public struct IPv4CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: UInt32
    public let prefixLength: Int

    /// Parses `a.b.c.d/n`; nil when malformed, the prefix is outside 8...30, or host bits are set.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4CIDR.parseAddress(String(parts[0])),
              let prefix = Int(parts[1]), (8...30).contains(prefix) else { return nil }
        let mask = UInt32.max << UInt32(32 - prefix)
        guard address & ~mask == 0 else { return nil }
        self.network = address
        self.prefixLength = prefix
    }

    /// Number of addresses usable for services: all but the network and broadcast addresses.
    public var capacity: Int { (1 << (32 - prefixLength)) - 2 }

    /// The `index`-th usable address (0-based), as text.
    public func address(at index: Int) -> String {
        precondition(index >= 0 && index < capacity)
        return IPv4CIDR.format(network + UInt32(index + 1))
    }

    /// The index of `address` among the usable ones, or nil when it is outside the block or reserved.
    public func index(of address: String) -> Int? {
        guard let value = IPv4CIDR.parseAddress(address), value > network else { return nil }
        let offset = Int(value - network) - 1
        return offset < capacity ? offset : nil
    }

    public var description: String { "\(IPv4CIDR.format(network))/\(prefixLength)" }

    /// Whether every address of the block is in 127.0.0.0/8, which Linux routes to the loopback interface.
    public var isLoopback: Bool { network >> 24 == 127 }

    static func parseAddress(_ text: String) -> UInt32? {
        IPv4Address(text)?.value
    }

    static func format(_ value: UInt32) -> String {
        IPv4Address(value: value).description
    }
}
