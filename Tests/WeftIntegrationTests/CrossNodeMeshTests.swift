import Foundation
import Testing
import WeftPKI
#if canImport(Glibc)
import Glibc
#endif

/// Services on two nodes of one machine talking through the mTLS tunnel: the server's own node runs
/// the frontend and serves the VIPs, a joined `weft agent` (127.0.0.2) runs the backend.
extension MultiNodeTests {
    private func demo(_ name: String, node: String, upstream: String? = nil, server: WeftServer) -> String {
        """
        apiVersion: weft/v1
        kind: Deployment
        metadata: {name: \(name)}
        spec:
          replicas: 1
          template:
            metadata: {labels: {app: \(name)}}
            spec:
              command: ["weft-demo"]
              env:
                - {name: TEST_DATA_DIR, value: "\(server.dataDirectory.path)"}\(upstream.map { "\n        - {name: UPSTREAM, value: \"\($0)\"}" } ?? "")
              ports: [{name: http}]
              readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
              terminationGracePeriodSeconds: 2
              nodeSelector: {weft.io/node: \(node)}
        ---
        apiVersion: weft/v1
        kind: Service
        metadata: {name: \(name)}
        spec:
          selector: {app: \(name)}
          ports: [{name: http, port: 80, targetPort: http}]
        """
    }

    private func policy(allowing account: String) -> String {
        """
        apiVersion: weft/v1
        kind: AuthorizationPolicy
        metadata: {name: backend-callers}
        spec:
          service: backend
          allow: [{serviceAccounts: [\(account)]}]
        """
    }

    /// The frontend's answer names the backend when the call across nodes worked.
    private func frontendReachesBackend(_ vip: String) async -> Bool {
        guard let response = try? await httpGet(host: vip, port: 80), response.status == 200,
              let upstream = (try? response.jsonObject())?["upstream"] as? [String: Any] else { return false }
        return upstream["service"] as? String == "backend" && upstream["status"] == nil
    }

    @Test("across nodes: traffic goes through the mTLS tunnel (a capture on the inbound port shows TLS, not the request), the source workload's identity crosses with it and policy allows or denies it, and a CA rotation under continuous load loses no request")
    func crossNodeTrafficIsEncryptedAuthorizedAndSurvivesRotation() async throws {
        try await withWeftServer { server in
            let token = try await server.createToken()
            try await withWeftAgent(server, token: token, nodeName: "worker") { _ in
                try await eventually(timeout: .seconds(20), "worker Ready") { try await server.node("worker")?["ready"] as? Bool == true }
                let manifest = demo("backend", node: "worker", server: server) + "\n---\n" + demo("frontend", node: server.nodeName, upstream: "backend:80", server: server)
                #expect(try await server.cli(["apply", "-f", try writeTemporaryFile(manifest, in: server.dataDirectory, name: "cross.yaml")]).exit == .exited(0))
                func vip(_ name: String) async throws -> String {
                    try #require(try await server.items("services").first { $0["name"] as? String == name }?["clusterIP"] as? String)
                }
                let frontend = try await vip("frontend"), backend = try await vip("backend")
                try await eventually(timeout: .seconds(30), "the frontend reaches the backend on the other node") { await frontendReachesBackend(frontend) }
                let tunnel = try #require((try await server.node("worker"))?["status"] as? [String: Any])["tunnel"] as? String
                #expect(tunnel?.hasPrefix("127.0.0.2:") == true, "\(String(describing: tunnel))")

                // What crosses the wire on the worker's inbound port: TLS records, never the request.
                if getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpdump"), let port = tunnel?.split(separator: ":").last {
                    let capture = server.dataDirectory.appendingPathComponent("inbound.pcap").path
                    let tcpdump = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/tcpdump"),
                                               arguments: ["-i", "lo", "-U", "-s", "0", "-w", capture, "tcp", "port", String(port)])
                    try tcpdump.start()
                    try await Task.sleep(for: .seconds(1))
                    let marker = "capture-\(UUID().uuidString.prefix(12))"
                    let answer = try await httpGet(host: backend, port: 80, path: "/\(marker)")
                    #expect(answer.status == 404 && answer.text.contains(marker), "the backend answered through the tunnel: \(answer.status)")
                    try await Task.sleep(for: .seconds(1))
                    await tcpdump.terminate(gracePeriod: .seconds(5))
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
                    #expect(bytes.count > 200, "the capture saw the stream")
                    #expect(bytes.range(of: Data(marker.utf8)) == nil, "the request crossed the inbound port in plaintext")
                    #expect(bytes.range(of: Data([0x17, 0x03, 0x03])) != nil, "no TLS application-data record on the inbound port")
                } else {
                    print("skipped the packet capture: it needs root and /usr/bin/tcpdump")
                }

                // The worker's own credential gets a workload certificate only for an account it runs.
                let nodeConfig = try String(contentsOfFile: server.dataDirectory.appendingPathComponent("agent-worker/node.yaml").path, encoding: .utf8)
                let nodeToken = try #require(nodeConfig.split(separator: "\n").first { $0.hasPrefix("token:") }?
                    .dropFirst("token:".count).trimmingCharacters(in: CharacterSet(charactersIn: " \"'")))
                let request = try IdentityRequest(identity: try SPIFFEID.workload(namespace: "default", serviceAccount: "x", trustDomain: "weft.internal"))
                func certify(_ account: String) async throws -> String {
                    let body = String(decoding: try JSONSerialization.data(withJSONObject: [
                        "csr": try request.csrPEM(), "identity": "spiffe://weft.internal/ns/default/sa/\(account)"]), as: UTF8.self)
                    return try await curl(["--cacert", server.caPath, "-H", "Authorization: Bearer \(nodeToken)", "-H", "Content-Type: application/json",
                                           "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", body, "\(server.url)/api/v1/certificates"]).stdout
                }
                #expect(try await certify("backend") == "201")
                #expect(try await certify("frontend") == "403", "the frontend runs on the server's node, not the worker")

                // Policy at the destination node: only the frontend's service account may call the backend.
                let policyPath = try writeTemporaryFile(policy(allowing: "frontend"), in: server.dataDirectory, name: "policy.yaml")
                #expect(try await server.cli(["apply", "-f", policyPath]).exit == .exited(0))
                try await eventually(timeout: .seconds(15), "a caller outside the mesh is refused") { (try? await httpGet(host: backend, port: 80)) == nil }
                #expect(await frontendReachesBackend(frontend), "the frontend's identity did not cross the tunnel")
                _ = try writeTemporaryFile(policy(allowing: "someone-else"), in: server.dataDirectory, name: "policy.yaml")
                #expect(try await server.cli(["apply", "-f", policyPath]).exit == .exited(0))
                try await eventually(timeout: .seconds(15), "the frontend is refused") { !(await frontendReachesBackend(frontend)) }
                #expect(try await server.cli(["delete", "-f", policyPath]).exit == .exited(0))
                try await eventually(timeout: .seconds(15), "the frontend is allowed again") { await frontendReachesBackend(frontend) }

                // A full root rotation while requests keep crossing nodes: none may fail.
                let load = Task {
                    var ok = 0, failed: [String] = []
                    while !Task.isCancelled {
                        if await frontendReachesBackend(frontend) { ok += 1 } else { failed.append(Date().formatted(.iso8601)) }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return (ok, failed)
                }
                for step in ["rotate", "activate", "retire"] {
                    let result = try await server.cli(["ca", step])
                    #expect(result.exit == .exited(0), "\(step): \(result)")
                    try await Task.sleep(for: .seconds(7))
                }
                load.cancel()
                let (ok, failed) = await load.value
                #expect(ok > 50, "too few requests during the rotation: \(ok)")
                #expect(failed.isEmpty, "\(failed.count) of \(ok + failed.count) requests failed during the rotation, at \(failed)")
                let status = try await server.cli(["ca", "status"])
                #expect(!status.stdout.contains("cluster"), "\(status)")
                #expect(await frontendReachesBackend(frontend))
            }
        }
    }
}
