import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `weft agent` started by a test: a second node on this machine with its own loopback address, no VIP
/// listeners (the server's own agent serves them), DNS on a free port and a data directory inside the
/// server's, so it is removed with it.
final class WeftAgentProcess: @unchecked Sendable {
    let server: WeftServer
    let nodeName: String
    let nodeIP: String
    let dataDirectory: URL
    let extraArguments: [String]
    private(set) var process: ChildProcess

    var credentialPath: String { dataDirectory.appendingPathComponent("node.yaml").path }

    init(server: WeftServer, token: String?, nodeName: String, nodeIP: String = "127.0.0.2", extraArguments: [String] = []) throws {
        self.server = server
        self.nodeName = nodeName
        self.nodeIP = nodeIP
        self.dataDirectory = server.dataDirectory.appendingPathComponent("agent-\(nodeName)")
        self.extraArguments = extraArguments
        self.process = try Self.makeProcess(server: server, token: token, nodeName: nodeName, nodeIP: nodeIP,
                                            dataDirectory: dataDirectory, extraArguments: extraArguments)
    }

    private static func makeProcess(server: WeftServer, token: String?, nodeName: String, nodeIP: String, dataDirectory: URL,
                                    extraArguments: [String]) throws -> ChildProcess {
        var arguments = ["agent", "--server", server.url, "--node-name", nodeName, "--node-ip", nodeIP, "--no-service-listeners",
                         "--dns-listen", "127.0.0.1:0", "--dns-upstream", "none", "--tunnel-port", "0", "--data-dir", dataDirectory.path]
        if let token { arguments += ["--token", token] }
        return ChildProcess(executable: try WeftBuild.executable("weft"), arguments: arguments + extraArguments)
    }

    /// Starts the agent and waits for its `ready` line.
    func start() async throws {
        try process.start()
        try await process.waitForLine(startingWith: "ready ", timeout: .seconds(60))
    }

    /// Starts a new agent process on the same data directory, without a token.
    func restart() async throws {
        process = try Self.makeProcess(server: server, token: nil, nodeName: nodeName, nodeIP: nodeIP, dataDirectory: dataDirectory,
                                       extraArguments: extraArguments)
        try await start()
    }

    /// Resumes it if stopped, then SIGTERM (it stops its replicas), SIGKILL after 30 s.
    func stop() async {
        process.send(SIGCONT)
        await process.terminate(gracePeriod: .seconds(30))
    }
}

/// Runs `body` with a started agent; always stops it.
func withWeftAgent<R>(_ server: WeftServer, token: String, nodeName: String, nodeIP: String = "127.0.0.2", extraArguments: [String] = [],
                      _ body: (WeftAgentProcess) async throws -> R) async throws -> R {
    let agent = try WeftAgentProcess(server: server, token: token, nodeName: nodeName, nodeIP: nodeIP, extraArguments: extraArguments)
    do {
        try await agent.start()
        let result = try await body(agent)
        await agent.stop()
        return result
    } catch {
        await agent.stop()
        throw error
    }
}

extension WeftServer {
    /// `weft token create`: the token (the first line of its output).
    func createToken(ttl: String = "1h") async throws -> String {
        let result = try await cli(["token", "create", "--ttl", ttl, "--description", "integration test"])
        guard result.exit == .exited(0), let token = result.stdout.split(separator: "\n").first.map(String.init), token.hasPrefix("weft1.") else {
            throw TestSupportError(description: "weft token create failed: \(result)")
        }
        return token
    }

    /// One node from `weft get nodes -o json`.
    func node(_ name: String) async throws -> [String: Any]? {
        let result = try await cli(["get", "nodes", "-o", "json"])
        guard result.exit == .exited(0) else { throw TestSupportError(description: "weft get nodes failed: \(result)") }
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return (object?["items"] as? [[String: Any]] ?? []).first { $0["name"] as? String == name }
    }
}

/// The file's permission bits.
func fileMode(_ path: String) throws -> Int {
    try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
}
