import ArgumentParser

/// The node's inbound mTLS tunnel port, shared by `weft server` and `weft agent`.
struct TunnelOptions: ParsableArguments {
    @Option(name: .long, help: "Port of the node's inbound mTLS tunnel, on the node's address: other nodes' proxies send streams for this node's replicas there (0 picks a free port).")
    var tunnelPort: Int = 15008

    @Flag(name: .long, help: "Run no inbound tunnel: other nodes then reach this node's replicas directly, without mTLS, and authorization policies are not enforced for them.")
    var noTunnel = false

    func validate() throws {
        guard (0...65535).contains(tunnelPort) else {
            throw ValidationError("--tunnel-port: \(tunnelPort) is not a port (0 to 65535; 0 picks a free one)")
        }
    }

    /// The port for `AgentConfiguration.tunnelPort`; nil with `--no-tunnel`.
    var port: Int? { noTunnel ? nil : tunnelPort }
}
