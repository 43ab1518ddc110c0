import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two nodes on one machine: the server's own agent on 127.0.0.1 and a `weft agent` that joins with a
/// token on 127.0.0.2 (no VIP listeners of its own), both the real binaries.
@Suite("Multi-node cluster", .serialized, .timeLimit(.minutes(5)))
struct MultiNodeTests {
    /// A weft-demo deployment; `nodeSelector` pins it.
    private func manifest(_ name: String, replicas: Int, marker: String, server: WeftServer, nodeSelector: [String: String] = [:]) -> String {
        let selector = nodeSelector.isEmpty ? "" : "\n      nodeSelector:\n" + nodeSelector.map { "        \($0.key): \($0.value)" }.joined(separator: "\n")
        return """
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
                      value: "\(server.dataDirectory.path)"
                  ports:
                    - name: http
                  readinessProbe:
                    httpGet:
                      path: /healthz
                      port: http
                    periodSeconds: 1
                  terminationGracePeriodSeconds: 2\(selector)
            """
    }

    @Test("an agent joins with a token (CA pinned), shows Ready in weft get nodes and restarts with its stored credential; a wrong CA hash and a revoked token are refused; the node credential cannot apply")
    func joining() async throws {
        try await withWeftServer { server in
            let token = try await server.createToken()

            // A token whose pin is not this cluster's CA: refused before the token is sent.
            let parts = token.split(separator: ".")
            let wrongPin = parts.dropLast().joined(separator: ".") + "." + String(repeating: "0", count: 64)
            let pinned = try WeftAgentProcess(server: server, token: wrongPin, nodeName: "impostor")
            try pinned.process.start()
            #expect(try await pinned.process.waitForExit(timeout: .seconds(30)) == .exited(1))
            #expect(pinned.process.lines(.stderr).joined().contains("pins \(String(repeating: "0", count: 64))"), "\(pinned.process.transcript)")
            #expect(!FileManager.default.fileExists(atPath: pinned.credentialPath))

            // A revoked token: 401.
            let revoked = try await server.createToken()
            let revokedID = String(revoked.split(separator: ".")[1])
            #expect(try await server.cli(["token", "revoke", revokedID]).exit == .exited(0))
            let refused = try WeftAgentProcess(server: server, token: revoked, nodeName: "late")
            try refused.process.start()
            #expect(try await refused.process.waitForExit(timeout: .seconds(30)) == .exited(1))
            #expect(refused.process.lines(.stderr).joined().contains("join token unknown, expired or revoked"), "\(refused.process.transcript)")

            // Nothing used the bad ones; token list shows no secret.
            let list = try await server.cli(["token", "list"])
            #expect(list.stdout.contains("ID") && list.stdout.contains("EXPIRES") && list.stdout.contains("USED-BY"), "\(list)")
            #expect(!list.stdout.contains(String(parts[2])) && !list.stdout.contains(revokedID), "\(list)")

            try await withWeftAgent(server, token: token, nodeName: "worker", extraArguments: ["--capacity", "cpu=2,memory=1Gi", "--labels", "role=worker"]) { agent in
                try await eventually(timeout: .seconds(20), "worker Ready") { try await server.node("worker")?["ready"] as? Bool == true }
                let table = try await server.cli(["get", "nodes"])
                let header = table.stdout.split(separator: "\n").first.map(String.init) ?? ""
                for column in ["NAME", "STATUS", "CAPACITY", "ALLOCATED", "REPLICAS", "HEARTBEAT", "ADDRESS", "AGE"] {
                    #expect(header.contains(column), "\(table.stdout)")
                }
                let row = table.stdout.split(separator: "\n").first { $0.hasPrefix("worker ") }.map(String.init) ?? ""
                #expect(row.contains("Ready") && row.contains("cpu=2,memory=1Gi") && row.contains("127.0.0.2"), "\(table.stdout)")
                let described = try await server.cli(["describe", "node", "worker"])
                #expect(described.stdout.contains("role=worker") && described.stdout.contains("Allocated:"), "\(described)")
                let tokens = try await server.cli(["token", "list", "-o", "json"])
                #expect(tokens.stdout.contains("\"worker\"") && !tokens.stdout.contains("impostor"), "used-by names the node, and only it: \(tokens)")

                // The credential and key are owner-only; the node's certificate names it.
                #expect(try fileMode(agent.credentialPath) == 0o600)
                #expect(try fileMode(agent.dataDirectory.appendingPathComponent("identity/node.key").path) == 0o600)
                #expect(try fileMode(agent.dataDirectory.path) == 0o700)

                // The node credential reads, but may not apply.
                let path = try writeTemporaryFile(manifest("web", replicas: 1, marker: "x", server: server), in: server.dataDirectory, name: "web.yaml")
                let weft = try WeftBuild.executable("weft")
                let apply = ChildProcess(executable: weft, arguments: ["apply", "-f", path, "--config", agent.credentialPath])
                try apply.start()
                #expect(try await apply.waitForExit(timeout: .seconds(30)) == .exited(1))
                #expect(apply.lines(.stderr).joined().contains("may not POST /api/v1/apply"), "\(apply.transcript)")
                let get = ChildProcess(executable: weft, arguments: ["get", "nodes", "--config", agent.credentialPath])
                try get.start()
                #expect(try await get.waitForExit(timeout: .seconds(30)) == .exited(0), "\(get.transcript)")

                // A restart needs no token: node.yaml is enough.
                await agent.stop()
                try await agent.restart()
                #expect(agent.process.lines(.stdout).contains { $0.hasPrefix("ready node=worker") })
                try await eventually(timeout: .seconds(20), "worker Ready after the restart") { try await server.node("worker")?["ready"] as? Bool == true }
            }
        }
    }

    @Test("a deployment pinned to the joined node runs there on its address; when the node goes silent it is NotReady within the grace and its replicas are Ready on the server's node within 10 s; when it resumes it stops the replaced replicas, never more than desired + surge")
    func failover() async throws {
        try await withWeftServer { server in
            let token = try await server.createToken()
            try await withWeftAgent(server, token: token, nodeName: "worker", extraArguments: ["--labels", "role=worker"]) { agent in
                try await eventually(timeout: .seconds(20), "worker Ready") { try await server.node("worker")?["ready"] as? Bool == true }
                let marker = "failover-\(UUID().uuidString.prefix(8))"
                let pinnedPath = try writeTemporaryFile(manifest("pinned", replicas: 1, marker: marker + "-pinned", server: server, nodeSelector: ["role": "worker"]),
                                                        in: server.dataDirectory, name: "pinned.yaml")
                let webPath = try writeTemporaryFile(manifest("web", replicas: 4, marker: marker, server: server), in: server.dataDirectory, name: "web.yaml")
                #expect(try await server.cli(["apply", "-f", pinnedPath]).exit == .exited(0))
                #expect(try await server.cli(["apply", "-f", webPath]).exit == .exited(0))

                func replicas(_ deployment: String) async throws -> [[String: Any]] {
                    try await server.items("replicas").filter { $0["deployment"] as? String == deployment }
                }
                try await eventually(timeout: .seconds(30), "the pinned replica Ready on worker, web spread 2 and 2") {
                    let pinned = try await replicas("pinned")
                    let web = try await replicas("web").filter { $0["ready"] as? Bool == true }
                    return pinned.count == 1 && pinned[0]["node"] as? String == "worker" && pinned[0]["ready"] as? Bool == true
                        && web.count == 4 && web.filter { $0["node"] as? String == "worker" }.count == 2
                }
                // The worker's replicas listen on its address.
                let pinnedAddress = try #require(try await replicas("pinned").first?["address"] as? String)
                #expect(pinnedAddress.hasPrefix("127.0.0.2:"))
                let answer = try await curl(["http://\(pinnedAddress)/healthz"])
                #expect(answer.exit == .exited(0), "\(answer)")
                let workerPIDs = try await replicas("web").filter { $0["node"] as? String == "worker" }.compactMap { ($0["status"] as? [String: Any])?["pid"] as? Int }
                #expect(workerPIDs.count == 2)

                // Watch the live (not terminating) web replicas from here on: never more than 4 + surge 1.
                let monitor = Task {
                    var most = 0
                    while !Task.isCancelled {
                        if let live = try? await replicas("web").filter({ $0["phase"] as? String != "Terminating" }).count { most = max(most, live) }
                        try? await Task.sleep(for: .milliseconds(300))
                    }
                    return most
                }

                // Silence: the agent stops (its replica processes keep running, as on a partitioned node).
                let silentSince = ContinuousClock.now
                kill(agent.process.processIdentifier, SIGSTOP)
                try await eventually(timeout: .seconds(15), "worker NotReady") { try await server.node("worker")?["ready"] as? Bool == false }
                let notReadyAfter = ContinuousClock.now - silentSince
                #expect(notReadyAfter <= .seconds(7), "NotReady after \(notReadyAfter) (grace 5 s)")
                try await eventually(timeout: .seconds(20), "4 web replicas Ready on the server's node") {
                    try await replicas("web").filter { $0["ready"] as? Bool == true && $0["node"] as? String == server.nodeName }.count == 4
                }
                let replacedAfter = ContinuousClock.now - silentSince
                #expect(replacedAfter <= .seconds(10), "replacements Ready \(replacedAfter) after the node went silent")
                print("failover: NotReady after \(notReadyAfter), replacements Ready after \(replacedAfter)")
                // Its endpoints are gone: only the server node's replicas serve web.
                let endpoints = try await server.items("endpoints").first { $0["name"] as? String == "web" }
                #expect((endpoints?["addresses"] as? [String] ?? []).allSatisfy { $0.hasPrefix("127.0.0.1:") }, "\(String(describing: endpoints))")
                // The pinned replica waits for a node with role=worker.
                try await eventually(timeout: .seconds(10), "the pinned replacement Pending") {
                    try await replicas("pinned").contains { $0["phase"] as? String == "Pending" && ($0["node"] as? String ?? "").isEmpty }
                }

                // Back: Ready again, the replaced processes stop and their objects go.
                kill(agent.process.processIdentifier, SIGCONT)
                try await eventually(timeout: .seconds(15), "worker Ready again") { try await server.node("worker")?["ready"] as? Bool == true }
                try await eventually(timeout: .seconds(20), "the replaced worker processes stopped") { workerPIDs.allSatisfy { !isAlive(Int32($0)) } }
                try await eventually(timeout: .seconds(20), "web: 4 replicas, none on worker") {
                    let web = try await replicas("web")
                    return web.count == 4 && web.allSatisfy { $0["node"] as? String == server.nodeName && $0["ready"] as? Bool == true }
                }
                #expect(processes(withEnvironment: "TEST_MARKER=\(marker)").count == 4)
                // The pinned deployment runs on worker again.
                try await eventually(timeout: .seconds(20), "the pinned replica Ready on worker again") {
                    let pinned = try await replicas("pinned")
                    return pinned.count == 1 && pinned[0]["node"] as? String == "worker" && pinned[0]["ready"] as? Bool == true
                }
                monitor.cancel()
                let most = await monitor.value
                #expect(most <= 5, "at most desired 4 + surge 1 live web replicas, saw \(most)")
            }
        }
    }
}
