import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `weft server` started by a test on 127.0.0.1 port 0 with its own data directory.
final class WeftServer: @unchecked Sendable {
    let dataDirectory: URL
    let nodeName: String
    private(set) var process: ChildProcess
    private(set) var url: String = ""

    var configPath: String { dataDirectory.appendingPathComponent("admin.yaml").path }
    var caPath: String { dataDirectory.appendingPathComponent("pki/ca.crt").path }
    var token: String { (try? String(contentsOfFile: dataDirectory.appendingPathComponent("pki/token").path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }

    /// Extra `weft server` flags; by default DNS listens on a free port and forwards nowhere, so no test
    /// ever reaches the host's resolvers.
    let extraArguments: [String]

    init(dataDirectory: URL, nodeName: String = "test-node", extraArguments: [String] = ["--dns-listen", "127.0.0.1:0", "--dns-upstream", "none", "--tunnel-port", "0"]) throws {
        self.dataDirectory = dataDirectory
        self.nodeName = nodeName
        self.extraArguments = extraArguments
        self.process = try Self.makeProcess(dataDirectory: dataDirectory, nodeName: nodeName, serviceCIDR: serviceCIDR, extraArguments: extraArguments)
    }

    /// `host:port` of the node's DNS server, from its `dns` line.
    func dnsAddress() async throws -> (host: String, port: Int) {
        let line = try await process.waitForLine(startingWith: "dns ", timeout: .seconds(30))
        let address = line.split(separator: " ")[1]
        let colon = address.lastIndex(of: ":")!
        return (String(address[..<colon]), Int(address[address.index(after: colon)...])!)
    }

    /// A service range of its own, so servers of tests running side by side never bind the same VIP.
    let serviceCIDR = "127.\(Int.random(in: 20...250)).\(Int.random(in: 0...255)).0/24"

    private static func makeProcess(dataDirectory: URL, nodeName: String, serviceCIDR: String, extraArguments: [String]) throws -> ChildProcess {
        ChildProcess(executable: try WeftBuild.executable("weft"),
                     arguments: ["server", "--data-dir", dataDirectory.path, "--api-listen", "127.0.0.1:0", "--node-name", nodeName,
                                 "--service-cidr", serviceCIDR] + extraArguments)
    }

    /// Starts the server and waits for its `ready` line.
    func start() async throws {
        try process.start()
        let line = try await process.waitForLine(startingWith: "ready ", timeout: .seconds(60))
        url = String(line.split(separator: " ")[1])
    }

    /// Stops it gracefully (SIGTERM) and waits; returns how it exited.
    func stop() async throws -> ChildProcess.Exit {
        process.send(SIGTERM)
        return try await process.waitForExit(timeout: .seconds(40))
    }

    /// Kills it with SIGKILL, as a crash would.
    func crash() async throws {
        process.send(SIGKILL)
        _ = try await process.waitForExit(timeout: .seconds(10))
    }

    /// Starts a new server process on the same data directory.
    func restart() async throws {
        process = try Self.makeProcess(dataDirectory: dataDirectory, nodeName: nodeName, serviceCIDR: serviceCIDR, extraArguments: extraArguments)
        try await start()
    }

    /// Runs a `weft` client command against this server.
    func cli(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let child = ChildProcess(executable: try WeftBuild.executable("weft"), arguments: arguments + ["--config", configPath])
        try child.start()
        let exit = try await child.waitForExit(timeout: timeout)
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    /// `weft get KIND -o json`, parsed: the items.
    func items(_ kind: String, namespace: String = "default") async throws -> [[String: Any]] {
        let result = try await cli(["get", kind, "-n", namespace, "-o", "json"])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "weft get \(kind) failed: \(result)") }
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return object?["items"] as? [[String: Any]] ?? []
    }
}

struct CommandResult: CustomStringConvertible {
    var exit: ChildProcess.Exit
    var stdout: String
    var stderr: String
    var description: String { "\(exit)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs `body` with a started server in a fresh temporary data directory; always stops the server
/// (and, with it, its replicas) and removes the directory.
func withWeftServer<R>(arguments: [String]? = nil, _ body: (WeftServer) async throws -> R) async throws -> R {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-it-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let server = try arguments.map { try WeftServer(dataDirectory: directory, extraArguments: $0) } ?? WeftServer(dataDirectory: directory)
    defer { try? FileManager.default.removeItem(at: directory) }
    do {
        try await server.start()
        let result = try await body(server)
        await server.process.terminate(gracePeriod: .seconds(30))
        return result
    } catch {
        await server.process.terminate(gracePeriod: .seconds(30))
        killProcesses(withEnvironment: "TEST_DATA_DIR=\(directory.path)")
        throw error
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(30), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw TestSupportError(description: "timed out after \(timeout) waiting for: \(what)")
}

/// PIDs of live processes whose environment contains `entry` (e.g. `MARKER=abc`).
func processes(withEnvironment entry: String) -> [Int32] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var found: [Int32] = []
    for name in names {
        guard let pid = Int32(name), let data = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
        if data.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == entry }), isAlive(pid) {
            found.append(pid)
        }
    }
    return found
}

func killProcesses(withEnvironment entry: String) {
    for pid in processes(withEnvironment: entry) { kill(pid, SIGKILL) }
}

/// Whether `pid` is a live (not zombie) process.
func isAlive(_ pid: Int32) -> Bool {
    // A killed multi-threaded process shows its leader as a zombie while its other threads are still
    // exiting, with its sockets still open: it is alive until every thread is gone or a zombie.
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return false }
    return tasks.contains { task in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }
}

/// A deployment of `replicas` weft-demo replicas, tagged with `marker` so its processes can be found.
func demoManifest(name: String, replicas: Int, marker: String, dataDirectory: URL) -> String {
    """
    apiVersion: weft/v1
    kind: Deployment
    metadata:
      name: \(name)
    spec:
      replicas: \(replicas)
      template:
        metadata:
          labels:
            app: \(name)
        spec:
          command: ["weft-demo"]
          env:
            - name: TEST_MARKER
              value: "\(marker)"
            - name: TEST_DATA_DIR
              value: "\(dataDirectory.path)"
          ports:
            - name: http
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 1
          terminationGracePeriodSeconds: 3
    ---
    apiVersion: weft/v1
    kind: Service
    metadata:
      name: \(name)
    spec:
      selector:
        app: \(name)
      ports:
        - name: http
          port: 80
          targetPort: http
    """
}

func writeTemporaryFile(_ text: String, in directory: URL, name: String) throws -> String {
    let url = directory.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// Runs curl against the server (tests only talk to 127.0.0.1).
func curl(_ arguments: [String], timeout: Duration = .seconds(15)) async throws -> CommandResult {
    let child = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/curl"), arguments: ["-sS"] + arguments)
    try child.start()
    let exit = try await child.waitForExit(timeout: timeout)
    return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
}
