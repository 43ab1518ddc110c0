// A Weft cluster on simulated hosts: network namespaces made by Tests/netns/hosts.sh, one `weft server`
// (control plane only) on host 1 and one `weft agent` on each further host, all the real binaries.

import Foundation
import Testing
import WeftCore
#if canImport(Glibc)
import Glibc
#endif

/// Whether this machine can make network namespaces, and why not.
enum NetnsSupport {
    /// `Tests/netns/hosts.sh` of this checkout.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("netns/hosts.sh")

    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Nil when the tests can run; else what is missing.
    static let unavailableReason: String? = {
        if getuid() != 0 { return "network-namespace hosts need root (they create namespaces and veth pairs); run as root, as CI does" }
        guard ip != nil else { return "network-namespace hosts need ip from iproute2 (apt-get install iproute2)" }
        // Root in an unprivileged container lacks these and cannot make namespaces.
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let effective = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
            .flatMap { UInt64($0.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16) } ?? 0
        let netAdmin: UInt64 = 1 << 12, sysAdmin: UInt64 = 1 << 21
        if effective & netAdmin == 0 || effective & sysAdmin == 0 {
            return "network-namespace hosts need CAP_NET_ADMIN and CAP_SYS_ADMIN (a privileged container)"
        }
        return nil
    }()

    static var available: Bool { unavailableReason == nil }

    /// The hosts' /24, as hosts.sh reads it: host k is `<subnet>.k`.
    static let subnet = ProcessInfo.processInfo.environment["WEFT_NETNS_SUBNET"].flatMap { $0.isEmpty ? nil : $0 } ?? "10.213.0"
}

/// Hosts in network namespaces running a Weft cluster. Host 1 runs `weft server --no-agent`; hosts 2…N
/// run `weft agent` as nodes named `host<k>`, each with its replicas, VIP listeners, DNS on
/// 127.0.0.1:53 and tunnel on its own loopback and address, as on separate machines. Use
/// `withNetnsCluster`, which always tears it down.
final class NetnsCluster: @unchecked Sendable {
    /// Unique per run: names the namespaces (`<prefix>-h<k>`, `<prefix>-sw`) and the work directory.
    let prefix: String
    let hostCount: Int
    let workDirectory: URL
    /// The server's `--node-grace` in seconds.
    let nodeGrace: Int
    /// Added to `weft server`'s command line.
    let serverArguments: [String]
    /// Added to the command line of the agent on each host.
    let agentArguments: @Sendable (Int) -> [String]
    private let lock = NSLock()
    private var serverProcess: ChildProcess?
    private var agentProcesses: [Int: ChildProcess] = [:]
    private var token = ""

    static let controlPlane = 1
    static let apiPort = 7443

    private init(prefix: String, hostCount: Int, nodeGrace: Int, serverArguments: [String], agentArguments: @escaping @Sendable (Int) -> [String]) {
        self.prefix = prefix
        self.hostCount = hostCount
        self.nodeGrace = nodeGrace
        self.serverArguments = serverArguments
        self.agentArguments = agentArguments
        workDirectory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
            .appendingPathComponent("weft-netns/\(prefix)")
    }

    /// The hosts that run agents.
    var nodeHosts: [Int] { Array(2...hostCount) }
    func namespace(_ host: Int) -> String { "\(prefix)-h\(host)" }
    /// The switch namespace, with the bridge `br0` every host is plugged into.
    var switchNamespace: String { "\(prefix)-sw" }
    func address(_ host: Int) -> String { "\(NetnsSupport.subnet).\(host)" }
    func nodeName(_ host: Int) -> String { "host\(host)" }
    var serverURL: String { "https://\(address(Self.controlPlane)):\(Self.apiPort)" }
    var serverDirectory: URL { workDirectory.appendingPathComponent("server") }
    var adminConfig: String { serverDirectory.appendingPathComponent("admin.yaml").path }
    func agentDirectory(_ host: Int) -> URL { workDirectory.appendingPathComponent(nodeName(host)) }

    var server: ChildProcess? { lock.withLock { serverProcess } }
    func agent(_ host: Int) -> ChildProcess? { lock.withLock { agentProcesses[host] } }

    // MARK: - Lifecycle

    /// Creates `agents + 1` hosts, starts the server and joins an agent on every other host, and waits
    /// until every node is Ready.
    static func start(agents: Int, nodeGrace: Int = 5, serverArguments: [String] = [],
                      agentArguments: @escaping @Sendable (Int) -> [String] = { _ in [] }) async throws -> NetnsCluster {
        let prefix = "wft-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let cluster = NetnsCluster(prefix: prefix, hostCount: agents + 1, nodeGrace: nodeGrace,
                                   serverArguments: serverArguments, agentArguments: agentArguments)
        do {
            let up = try await cluster.script(["up", String(agents + 1), prefix, "--owner", String(getpid())])
            guard up.exit == .exited(0) else { throw TestSupportError(description: "hosts.sh up failed: \(up)") }
            try await cluster.startServer()
            cluster.token = try await cluster.createToken()
            try await withThrowingDiscardingTaskGroup { group in
                for host in cluster.nodeHosts {
                    group.addTask { try await cluster.startAgent(host) }
                }
            }
            try await eventually(timeout: .seconds(30), "every node Ready") {
                let nodes = try await cluster.items("nodes")
                return cluster.nodeHosts.allSatisfy { host in
                    nodes.contains { $0["name"] as? String == cluster.nodeName(host) && $0["ready"] as? Bool == true }
                }
            }
        } catch {
            await cluster.tearDown(failed: true)
            throw error
        }
        return cluster
    }

    /// Kills everything on the hosts and removes them, their files and the work directory. Never throws.
    func tearDown(failed: Bool) async {
        let processes = lock.withLock { [serverProcess] + agentProcesses.values.map { Optional($0) } }.compactMap { $0 }
        if failed {
            // The last words of each process, for the failure report.
            if let server { print("--- weft server (\(prefix)) ---\n" + Self.tail(server)) }
            for host in nodeHosts {
                if let agent = agent(host) { print("--- weft agent \(nodeName(host)) (\(prefix)) ---\n" + Self.tail(agent)) }
            }
        }
        if let keep = ProcessInfo.processInfo.environment["WEFT_NETNS_KEEP"], !keep.isEmpty {
            // For a look at the server's and agents' files and the replicas' logs after the run.
            for process in processes { process.send(SIGKILL) }
            let kept = URL(fileURLWithPath: keep).appendingPathComponent(prefix)
            try? FileManager.default.createDirectory(at: kept.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FileManager.default.copyItem(at: workDirectory, to: kept)
            for (name, process) in [("server", server)] + nodeHosts.map({ (nodeName($0), agent($0)) }) {
                guard let process else { continue }
                try? process.transcript.write(to: kept.appendingPathComponent("\(name).out"), atomically: true, encoding: .utf8)
            }
            print("kept \(prefix)'s files in \(kept.path)")
        }
        let down = try? await script(["down", prefix])
        if down?.exit != .exited(0) { print("hosts.sh down \(prefix) failed: \(String(describing: down))") }
        for process in processes { await process.terminate(gracePeriod: .seconds(1)) }
    }

    private static func tail(_ process: ChildProcess, lines: Int = 40) -> String {
        (process.lines(.stdout).suffix(5) + process.lines(.stderr).suffix(lines)).joined(separator: "\n")
    }

    // MARK: - Processes

    /// `hosts.sh` with `arguments`.
    func script(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let child = ChildProcess(executable: URL(fileURLWithPath: "/bin/bash"), arguments: [NetnsSupport.script.path] + arguments)
        try child.start()
        let exit = try await child.waitForExit(timeout: timeout)
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    /// A process to run on `host` (`ip netns exec`): its network, loopback and /etc/resolv.conf.
    func process(on host: Int, _ executable: String, _ arguments: [String]) -> ChildProcess {
        ChildProcess(executable: URL(fileURLWithPath: NetnsSupport.ip ?? "/usr/sbin/ip"),
                     arguments: ["netns", "exec", namespace(host), executable] + arguments)
    }

    /// Runs `executable` on `host` to its end.
    func run(on host: Int, _ executable: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let child = process(on: host, executable, arguments)
        try child.start()
        let exit = try await child.waitForExit(timeout: timeout)
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    private func serverProcessToStart() throws -> ChildProcess {
        process(on: Self.controlPlane, try WeftBuild.executable("weft").path, [
            "server", "--no-agent", "--data-dir", serverDirectory.path, "--node-name", nodeName(Self.controlPlane),
            "--api-listen", "\(address(Self.controlPlane)):\(Self.apiPort)", "--node-grace", String(nodeGrace),
            "--dns-upstream", "none",
        ] + serverArguments)
    }

    /// Starts `weft server` on host 1 and waits for its `ready` line.
    func startServer() async throws {
        let server = try serverProcessToStart()
        lock.withLock { serverProcess = server }
        try server.start()
        try await server.waitForLine(startingWith: "ready ", timeout: .seconds(60))
    }

    /// SIGKILL to the server, as a crash; returns once it is gone.
    func crashServer() async throws {
        guard let server else { return }
        server.send(SIGKILL)
        _ = try await server.waitForExit(timeout: .seconds(10))
    }

    /// Starts `weft agent` on `host` (joining with the cluster's token the first time) and waits for its
    /// `ready` line.
    func startAgent(_ host: Int, labels: [String: String] = [:]) async throws {
        let directory = agentDirectory(host)
        var arguments = ["agent", "--node-name", nodeName(host), "--node-ip", address(host), "--data-dir", directory.path,
                         "--dns-listen", "127.0.0.1:53", "--dns-upstream", "none"]
        if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("node.yaml").path) {
            arguments += ["--server", serverURL, "--token", token]
        }
        if !labels.isEmpty { arguments += ["--labels", labels.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")] }
        arguments += agentArguments(host)
        // `ip netns exec` mounts a sysfs of the host's network namespace over /sys, which hides the machine's
        // cgroup hierarchies; a real host has them (the oci runtime needs them), so they are mounted again.
        let agent = process(on: host, "/bin/sh", ["-c", Self.cgroupMounts + "exec \"$0\" \"$@\"",
                                                  try WeftBuild.executable("weft").path] + arguments)
        lock.withLock { agentProcesses[host] = agent }
        try agent.start()
        try await agent.waitForLine(startingWith: "ready ", timeout: .seconds(60))
    }

    /// Shell commands that mount the machine's cgroup hierarchies (as /proc/self/mounts lists them) again
    /// under /sys/fs/cgroup; a hierarchy that cannot be mounted is skipped.
    static let cgroupMounts: String = {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 4, fields[1].hasPrefix("/sys/fs/cgroup"), ["cgroup", "cgroup2", "tmpfs"].contains(fields[2]) else { return nil }
            return "mkdir -p \(fields[1]) 2>/dev/null; mount -t \(fields[2]) -o \(fields[3]) \(fields[0]) \(fields[1]) 2>/dev/null; "
        }.joined()
    }()

    /// SIGKILL to every process on `host` — the agent and its replicas — as a host that crashes.
    func killHost(_ host: Int) async throws {
        let result = try await script(["kill", prefix, String(host)])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "hosts.sh kill failed: \(result)") }
        if let agent = agent(host) { _ = try await agent.waitForExit(timeout: .seconds(30)) }
    }

    /// Unplugs `host` from the switch: nothing reaches it or leaves it, its processes keep running.
    func cut(_ host: Int) async throws {
        let result = try await script(["cut", prefix, String(host)])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "hosts.sh cut failed: \(result)") }
    }

    /// Plugs `host` back in.
    func heal(_ host: Int) async throws {
        let result = try await script(["heal", prefix, String(host)])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "hosts.sh heal failed: \(result)") }
    }

    /// PIDs of the processes on `host` (in its network namespace).
    func pids(on host: Int) async throws -> Set<Int32> {
        let child = ChildProcess(executable: URL(fileURLWithPath: NetnsSupport.ip ?? "/usr/sbin/ip"), arguments: ["netns", "pids", namespace(host)])
        try child.start()
        _ = try await child.waitForExit(timeout: .seconds(10))
        return Set(child.lines(.stdout).compactMap { Int32($0) })
    }

    // MARK: - The API, from the control-plane host

    /// `weft ARGUMENTS --config admin.yaml`, run on host 1 (the API is reachable only inside the hosts).
    func cli(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await run(on: Self.controlPlane, try WeftBuild.executable("weft").path, arguments + ["--config", adminConfig], timeout: timeout)
    }

    /// `weft get KIND -o json` (all namespaces for namespaced kinds): the items.
    func items(_ kind: String) async throws -> [[String: Any]] {
        let result = try await cli(["get", kind, "-A", "-o", "json"])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "weft get \(kind) failed: \(result)") }
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return object?["items"] as? [[String: Any]] ?? []
    }

    func createToken() async throws -> String {
        let result = try await cli(["token", "create", "--ttl", "1h", "--description", "netns hosts"])
        guard result.exit == .exited(0), let token = result.stdout.split(separator: "\n").first.map(String.init), token.hasPrefix("weft1.") else {
            throw TestSupportError(description: "weft token create failed: \(result)")
        }
        return token
    }

    /// Writes `manifest` to the work directory and applies it.
    func apply(_ manifest: String, name: String) async throws {
        let path = try writeTemporaryFile(manifest, in: workDirectory, name: name)
        let result = try await cli(["apply", "-f", path])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "weft apply \(name) failed: \(result)") }
    }

    // MARK: - Inside a host, from this process

    /// Runs blocking `work` on a new thread that has entered `host`'s network namespace, so its sockets
    /// are that host's (its loopback, VIPs and DNS). The thread ends with the work; no other code runs on it.
    func onHost<T: Sendable>(_ host: Int, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        let path = "/run/netns/\(namespace(host))"
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try enterNetworkNamespace(path)
                    return try work()
                })
            }
            thread.name = "netns \(namespace(host))"
            thread.start()
        }
    }
}

/// Moves the calling thread (only it: network namespaces are per thread) into the namespace at `path`.
func enterNetworkNamespace(_ path: String) throws {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw TestSupportError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    // Glibc's Swift module does not export setns (it is a _GNU_SOURCE declaration): look it up.
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
        throw TestSupportError(description: "this C library has no setns")
    }
    let cloneNewNet: Int32 = 0x4000_0000
    guard unsafeBitCast(symbol, to: SetNS.self)(descriptor, cloneNewNet) == 0 else {
        throw TestSupportError(description: "setns(\(path)) failed: \(String(cString: strerror(errno)))")
    }
}

/// Runs `body` with a started cluster of `agents` nodes on hosts of their own; always tears it down,
/// also when `body` throws.
func withNetnsCluster<R>(agents: Int, nodeGrace: Int = 5, serverArguments: [String] = [],
                         agentArguments: @escaping @Sendable (Int) -> [String] = { _ in [] },
                         _ body: (NetnsCluster) async throws -> R) async throws -> R {
    let cluster = try await NetnsCluster.start(agents: agents, nodeGrace: nodeGrace, serverArguments: serverArguments, agentArguments: agentArguments)
    do {
        let result = try await body(cluster)
        await cluster.tearDown(failed: false)
        return result
    } catch {
        await cluster.tearDown(failed: true)
        throw error
    }
}

// MARK: - Requests from inside a host

/// The A record of `name` from the DNS server on 127.0.0.1:`port` of the calling thread's namespace.
func resolveA(_ name: String, port: Int = 53) throws -> String {
    let answer = try udpQuery(port: port, name, .a)
    for record in answer.answers {
        if case .a(let address) = record.data { return address.description }
    }
    throw TestSupportError(description: "no A record for \(name) (rcode \(answer.responseCode))")
}

/// One `GET path` to `name` on port 80, resolved through the host's DNS first, on a fresh connection.
func getByName(_ name: String, path: String = "/", timeout: Duration = .seconds(5)) throws -> HTTPResult {
    let address = try resolveA(name)
    let connection = try BlockingHTTPConnection(host: address, port: 80, timeout: timeout)
    try connection.write("GET \(path) HTTP/1.1\r\nHost: \(name)\r\nUser-Agent: weft-tests\r\nConnection: close\r\n\r\n")
    return try connection.readResponse()
}

/// Requests sent one after another from inside a host, on a thread of its own, until `stop()`: each
/// resolves the name through the host's DNS and sends `GET /` to the address. Records every outcome.
final class LoadLoop: @unchecked Sendable {
    struct Outcome: Sendable {
        var started: ContinuousClock.Instant
        var finished: ContinuousClock.Instant
        /// Nil when the request succeeded; else why not.
        var failure: String?
        /// The replicas that answered, outermost first (the shop's chain).
        var replicas: [String]
    }

    private let lock = NSLock()
    private var stopped = false
    private var outcomes: [Outcome] = []
    private var running: Task<Void, Error>?

    private init() {}

    /// Starts the loop on `host`; `check` says why an answer is a failure, or nil when it is a success.
    static func start(cluster: NetnsCluster, host: Int, name: String, interval: Duration = .milliseconds(20),
                      check: @escaping @Sendable (HTTPResult) -> String? = LoadLoop.shopAnswerProblem) -> LoadLoop {
        let loop = LoadLoop()
        let pause = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        let task = Task {
            try await cluster.onHost(host) {
                while !loop.lock.withLock({ loop.stopped }) {
                    let started = ContinuousClock.now
                    var outcome = Outcome(started: started, finished: started, failure: nil, replicas: [])
                    do {
                        let answer = try getByName(name)
                        outcome.failure = check(answer)
                        outcome.replicas = LoadLoop.chain(answer)
                    } catch {
                        outcome.failure = "\(error)"
                    }
                    outcome.finished = ContinuousClock.now
                    loop.lock.withLock { loop.outcomes.append(outcome) }
                    Thread.sleep(forTimeInterval: pause)
                }
            }
        }
        loop.lock.withLock { loop.running = task }
        return loop
    }

    /// What has been recorded so far.
    var recorded: [Outcome] { lock.withLock { outcomes } }

    /// Stops after the request in flight, without waiting (for a test that ends early).
    func cancel() {
        lock.withLock { stopped = true }
    }

    /// Stops after the request in flight and returns every outcome.
    func stop() async throws -> [Outcome] {
        let task = lock.withLock {
            stopped = true
            return running
        }
        try await task?.value
        return recorded
    }

    /// The replica names of a weft-demo answer and its nested upstream answers.
    static func chain(_ answer: HTTPResult) -> [String] {
        var names: [String] = []
        var object = try? answer.jsonObject()
        while let current = object {
            if let name = current["replica"] as? String { names.append(name) }
            object = current["upstream"] as? [String: Any]
        }
        return names
    }

    /// A shop answer is whole when it is 200 and frontend → cart → catalog all answered.
    @Sendable static func shopAnswerProblem(_ answer: HTTPResult) -> String? {
        guard answer.status == 200 else { return "status \(answer.status): \(answer.text.prefix(300))" }
        let services = serviceChain(answer)
        return services == ["frontend", "cart", "catalog"] ? nil : "incomplete chain \(services): \(answer.text.prefix(300))"
    }

    /// The service names of a weft-demo answer and its nested upstream answers, outermost first.
    static func serviceChain(_ answer: HTTPResult) -> [String] {
        var services: [String] = []
        var object = try? answer.jsonObject()
        while let current = object {
            if current["error"] != nil { services.append("error"); break }
            if let name = current["service"] as? String { services.append(name) }
            object = current["upstream"] as? [String: Any]
        }
        return services
    }
}
