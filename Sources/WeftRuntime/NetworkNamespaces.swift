#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import WeftCore

/// Whether this machine can run the netns driver, and why not: it needs root with CAP_NET_ADMIN and
/// CAP_SYS_ADMIN (to make namespaces, veth pairs and the bind mounts of `ip netns exec`) and `ip` from iproute2.
public enum NetnsDriverSupport {
    /// Where `ip` is looked for, in order.
    public static let ipCandidates = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]

    /// The first executable `ip` of ``ipCandidates``, or nil.
    public static func findIP() -> String? {
        ipCandidates.first { access($0, X_OK) == 0 }
    }

    /// Why the netns driver cannot run for a process with effective user `uid`, the `CapEff:` bitmask of
    /// `/proc/self/status` (`effectiveCapabilities`) and `ip` at `ipPath`; nil when it can.
    public static func unavailableReason(uid: UInt32, effectiveCapabilities: UInt64?, ipPath: String?) -> String? {
        if uid != 0 {
            return "the netns runtime needs root (it creates network namespaces and veth pairs); run weft agent as root, or set runtime: process"
        }
        let netAdmin: UInt64 = 1 << 12, sysAdmin: UInt64 = 1 << 21
        if let capabilities = effectiveCapabilities, capabilities & netAdmin == 0 || capabilities & sysAdmin == 0 {
            return "the netns runtime needs CAP_NET_ADMIN and CAP_SYS_ADMIN, which this agent lacks (an unprivileged container?); run it privileged, or set runtime: process"
        }
        if ipPath == nil {
            return "the netns runtime needs ip from iproute2, found in none of \(ipCandidates.joined(separator: ", ")); install iproute2, or set runtime: process"
        }
        return nil
    }

    /// ``unavailableReason(uid:effectiveCapabilities:ipPath:)`` for this process.
    public static func unavailableReason() -> String? {
        unavailableReason(uid: geteuid(), effectiveCapabilities: effectiveCapabilities(), ipPath: findIP())
    }

    /// The `CapEff:` bitmask of `/proc/self/status`, or nil when it cannot be read.
    static func effectiveCapabilities() -> UInt64? {
        guard let bytes = readSmallFile("/proc/self/status") else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("CapEff:") }
        return line.flatMap { UInt64($0.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16) }
    }
}

/// Runs `ip` (iproute2) commands for the netns driver; every failure names the command and what `ip` said.
public struct IPRoute: Sendable {
    /// The `ip` executable.
    public let path: String
    private let logger: Logger

    public init(path: String, logger: Logger = Logger(label: "weft.runtime.netns")) {
        self.path = path
        self.logger = logger
    }

    /// Runs `ip ARGUMENTS` to its end and returns its output; throws a ``RuntimeError`` (`.network`)
    /// when it fails or takes longer than `timeout`.
    @discardableResult
    public func run(_ arguments: [String], timeout: Duration = .seconds(10)) async throws -> String {
        try await ToolCommand(path: path, code: .network, logger: logger).run(arguments, timeout: timeout, outputLimit: 64 * 1024)
    }

    /// Runs `ip ARGUMENTS` for removing what may already be gone; returns the failure instead of throwing it.
    @discardableResult
    public func attempt(_ arguments: [String]) async -> RuntimeError? {
        do {
            try await run(arguments)
            return nil
        } catch let error as RuntimeError {
            return error
        } catch {
            return RuntimeError(code: .network, message: "ip \(arguments.joined(separator: " ")): \(error)")
        }
    }
}

/// The node side of the netns driver: the bridge `weft0` that every replica's veth is plugged into,
/// holding the pod network's gateway address, and (optionally) a local route that makes the service
/// VIP block an address of the node, so that the node proxy can bind VIPs that replicas reach through
/// their default route — the way Linux itself treats 127.0.0.0/8.
public struct NodeBridge: Sendable {
    /// The bridge's interface name.
    public static let name = "weft0"

    public let ip: IPRoute
    public let network: PodNetwork

    public init(ip: IPRoute, network: PodNetwork) {
        self.ip = ip
        self.network = network
    }

    /// Creates the bridge (or reuses one left by an earlier agent) with the gateway address and brings it up.
    public func setUp() async throws {
        if (try? await ip.run(["link", "show", "dev", Self.name])) == nil {
            try await ip.run(["link", "add", Self.name, "type", "bridge"])
        } else {
            // An address of an earlier --pod-cidr would linger next to the new one.
            try await ip.run(["addr", "flush", "dev", Self.name])
        }
        try await ip.run(["addr", "replace", "\(network.gateway)/\(network.prefixLength)", "dev", Self.name])
        try await ip.run(["link", "set", Self.name, "up"])
    }

    /// Makes every address of `serviceBlock` local to the node (`ip route replace local BLOCK dev lo`), so
    /// the node proxy binds any VIP and replica traffic to a VIP arriving on the bridge is delivered to it.
    public func routeServiceBlock(_ serviceBlock: IPv4CIDR) async throws {
        try await ip.run(["route", "replace", "local", serviceBlock.description, "dev", "lo", "table", "local"])
    }

    /// Removes the service block's local route and the bridge; what is already gone is skipped.
    public func tearDown(serviceBlock: IPv4CIDR?) async {
        if let serviceBlock {
            await ip.attempt(["route", "del", "local", serviceBlock.description, "dev", "lo", "table", "local"])
        }
        await ip.attempt(["link", "del", Self.name])
    }
}

/// One replica incarnation's network: a namespace with `lo` and `eth0` (the replica's address, default
/// route via the bridge), the veth peer of `eth0` plugged into the bridge, and the namespace's
/// `/etc/netns/<namespace>/resolv.conf`, which `ip netns exec` mounts over `/etc/resolv.conf`.
public struct PodSandbox: Sendable, Hashable {
    public let names: PodSandboxNames
    public let address: IPv4Address

    public init(names: PodSandboxNames, address: IPv4Address) {
        self.names = names
        self.address = address
    }

    /// Where `ip netns exec` finds the namespace's own files.
    public static func etcDirectory(namespace: String) -> String { "/etc/netns/\(namespace)" }

    /// Creates the namespace, veth pair, address, routes and resolv.conf. On failure what was made is removed.
    public func create(bridge: NodeBridge, resolvConf: String) async throws {
        let ip = bridge.ip
        let namespace = names.namespace
        do {
            try await ip.run(["netns", "add", namespace])
            // Both ends are made at once, the replica's directly inside its namespace.
            try await ip.run(["link", "add", names.hostInterface, "type", "veth", "peer", "name", PodSandboxNames.replicaInterface, "netns", namespace])
            try await ip.run(["link", "set", names.hostInterface, "master", NodeBridge.name])
            try await ip.run(["link", "set", names.hostInterface, "up"])
            try await ip.run(["-n", namespace, "link", "set", "lo", "up"])
            try await ip.run(["-n", namespace, "addr", "add", "\(address)/\(bridge.network.prefixLength)", "dev", PodSandboxNames.replicaInterface])
            try await ip.run(["-n", namespace, "link", "set", PodSandboxNames.replicaInterface, "up"])
            try await ip.run(["-n", namespace, "route", "add", "default", "via", bridge.network.gateway.description])
            let directory = Self.etcDirectory(namespace: namespace)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let path = (directory as NSString).appendingPathComponent("resolv.conf")
            guard FileManager.default.createFile(atPath: path, contents: Data(resolvConf.utf8), attributes: [.posixPermissions: 0o644]) else {
                throw RuntimeError(code: .network, message: "cannot write \(path) for network namespace \(namespace)")
            }
        } catch {
            await Self.remove(namespace: namespace, hostInterface: names.hostInterface, ip: ip)
            throw error
        }
    }

    /// The process spec that runs `spec` inside this sandbox: `ip netns exec <namespace> <command>`, which
    /// enters the namespace, mounts its resolv.conf and execs the command (so the pid is the replica's).
    public func wrap(_ spec: ProcessSpec, ip: IPRoute) -> ProcessSpec {
        var wrapped = spec
        wrapped.executable = ip.path
        wrapped.arguments = ["netns", "exec", names.namespace, spec.executable] + spec.arguments
        return wrapped
    }

    /// Kills whatever still runs in the namespace, deletes it (which deletes the veth pair), the node-side
    /// interface should it remain, and the namespace's /etc/netns directory. Idempotent; returns what could
    /// not be removed, for the caller to log.
    @discardableResult
    public static func remove(namespace: String, hostInterface: String, ip: IPRoute) async -> [String] {
        var problems: [String] = []
        let handle = "/run/netns/\(namespace)"
        if access(handle, F_OK) == 0 {
            if let pids = try? await ip.run(["netns", "pids", namespace]) {
                for pid in pids.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap({ Int32($0) }) {
                    _ = kill(pid, SIGKILL)
                }
            }
            // A busy handle (a mount still being torn down) gets a second try.
            for attempt in 0..<3 {
                guard let failure = await ip.attempt(["netns", "delete", namespace]) else { break }
                if access(handle, F_OK) != 0 { break }
                if attempt == 2 {
                    problems.append("\(failure)")
                } else {
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        // Deleting the namespace normally took the veth pair with it: a failure matters only if it is still there.
        if let failure = await ip.attempt(["link", "del", hostInterface]), (try? await ip.run(["link", "show", "dev", hostInterface])) != nil {
            problems.append("\(failure)")
        }
        try? FileManager.default.removeItem(atPath: etcDirectory(namespace: namespace))
        return problems
    }
}
