import Foundation
import Testing
import WeftPKI

/// Workload certificates handed to replicas, and the node's inbound mTLS tunnel port checked with
/// OpenSSL as the independent peer.
extension ClusterTests {
    private static let openssl = "/usr/bin/openssl"

    private func shell(_ script: String, timeout: Duration = .seconds(20)) async throws -> CommandResult {
        let child = ChildProcess(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script])
        try child.start()
        let exit = try await child.waitForExit(timeout: timeout)
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    /// `CONNECT destination` and a GET of /healthz through `openssl s_client` to the tunnel port.
    private func connectThrough(tunnel: String, destination: String, credentials: [String], bundle: String) async throws -> CommandResult {
        let request = "CONNECT \(destination) HTTP/1.1\\r\\nHost: \(destination)\\r\\n\\r\\nGET /healthz HTTP/1.1\\r\\nHost: web\\r\\nConnection: close\\r\\n\\r\\n"
        let arguments = ["s_client", "-connect", tunnel, "-tls1_3", "-CAfile", bundle, "-verify_return_error", "-quiet"] + credentials
        return try await shell("printf '\(request)' | \(Self.openssl) \(arguments.joined(separator: " ")) 2>&1")
    }

    @Test("replicas get a workload SVID (key 0600) that OpenSSL verifies; the tunnel port completes TLS 1.3 with it and carries a CONNECT to the replica, and refuses no certificate, a foreign CA and an expired certificate",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl"))
    func workloadCertificatesAndTheTunnelPort() async throws {
        try await withWeftServer { server in
            let applied = try await server.cli(["apply", "-f", try writeTemporaryFile(
                demoManifest(name: "web", replicas: 1, marker: "svid", dataDirectory: server.dataDirectory),
                in: server.dataDirectory, name: "web.yaml")])
            #expect(applied.exit == .exited(0), "\(applied)")

            // The workload's files, and the replica told where they are.
            let directory = server.dataDirectory.appendingPathComponent("agent/identity/workloads/default/web")
            let certificate = directory.appendingPathComponent("svid.pem").path
            let key = directory.appendingPathComponent("svid.key").path
            let bundle = directory.appendingPathComponent("bundle.pem").path
            try await eventually(timeout: .seconds(20), "svid.pem exists") { FileManager.default.fileExists(atPath: certificate) }
            #expect(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int == 0o600)
            try await eventually(timeout: .seconds(20), "the replica has WEFT_SVID_CERT") {
                !processes(withEnvironment: "WEFT_SVID_CERT=\(certificate)").isEmpty
            }
            let verify = try await shell("\(Self.openssl) verify -CAfile \(bundle) \(certificate)")
            #expect(verify.exit == .exited(0) && verify.stdout.contains("OK"), "\(verify)")
            let text = try await shell("\(Self.openssl) x509 -in \(certificate) -noout -text")
            #expect(text.stdout.contains("URI:spiffe://weft.internal/ns/default/sa/web"), "\(text.stdout)")

            // Where the replica listens, and the node's tunnel port.
            var destination = ""
            try await eventually(timeout: .seconds(30), "web has an endpoint") {
                guard let endpoint = (try await server.items("endpoints")).first(where: { ($0["metadata"] as? [String: Any])?["name"] as? String == "web" })?["endpoints"] as? [[String: Any]],
                      let first = endpoint.first, let ip = first["ip"] as? String, let port = (first["ports"] as? [String: Int])?["80"] else { return false }
                destination = "\(ip):\(port)"
                return true
            }
            let nodes = try await server.cli(["get", "nodes", "-o", "json"])
            let tunnel = try #require(((try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]])?
                .first.flatMap { ($0["status"] as? [String: Any])?["tunnel"] as? String }, "\(nodes)")

            // A valid SVID: TLS 1.3, the CONNECT is accepted and the replica answers through it.
            let valid = try await connectThrough(tunnel: tunnel, destination: destination, credentials: ["-cert", certificate, "-key", key], bundle: bundle)
            #expect(valid.stdout.contains("200 Connection Established"), "\(valid)")
            #expect(valid.stdout.contains("HTTP/1.1 200 OK"), "\(valid)")
            // Not an endpoint of this node: refused.
            let elsewhere = try await connectThrough(tunnel: tunnel, destination: "127.0.0.1:1", credentials: ["-cert", certificate, "-key", key], bundle: bundle)
            #expect(elsewhere.stdout.contains("404"), "\(elsewhere)")

            // No certificate.
            let anonymous = try await connectThrough(tunnel: tunnel, destination: destination, credentials: [], bundle: bundle)
            #expect(!anonymous.stdout.contains("Connection Established"), "\(anonymous)")
            // A certificate from another CA, with the right SPIFFE ID.
            let foreignKey = server.dataDirectory.appendingPathComponent("foreign.key").path
            let foreignCertificate = server.dataDirectory.appendingPathComponent("foreign.crt").path
            let made = try await shell("\(Self.openssl) req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \(foreignKey) -out \(foreignCertificate) -subj /CN=foreign -days 1 -addext subjectAltName=URI:spiffe://weft.internal/ns/default/sa/web 2>&1")
            #expect(made.exit == .exited(0), "\(made)")
            let foreign = try await connectThrough(tunnel: tunnel, destination: destination, credentials: ["-cert", foreignCertificate, "-key", foreignKey], bundle: bundle)
            #expect(!foreign.stdout.contains("Connection Established"), "\(foreign)")
            // An expired certificate from the cluster CA itself.
            let ca = try CertificateAuthority.load(certificatePath: server.caPath, keyPath: server.dataDirectory.appendingPathComponent("pki/ca.key").path)
            let identity = try SPIFFEID.workload(namespace: "default", serviceAccount: "web", trustDomain: "weft.internal")
            let request = try IdentityRequest(identity: identity)
            let expired = try ca.issue(csr: request.csr, identity: identity, validity: 3600, now: Date().addingTimeInterval(-2 * 86_400))
            let expiredCertificate = try writeTemporaryFile(try expired.serializeAsPEM().pemString, in: server.dataDirectory, name: "expired.crt")
            let expiredKey = try writeTemporaryFile(try request.privateKey.serializeAsPEM().pemString, in: server.dataDirectory, name: "expired.key")
            let late = try await connectThrough(tunnel: tunnel, destination: destination, credentials: ["-cert", expiredCertificate, "-key", expiredKey], bundle: bundle)
            #expect(!late.stdout.contains("Connection Established"), "\(late)")
        }
    }

    @Test("weft ca rotate, activate and retire: nodes trust the new root, renew their node and workload certificates from it, and drop the old root",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl"))
    func caRotation() async throws {
        try await withWeftServer { server in
            let applied = try await server.cli(["apply", "-f", try writeTemporaryFile(
                demoManifest(name: "web", replicas: 1, marker: "rotation", dataDirectory: server.dataDirectory),
                in: server.dataDirectory, name: "web.yaml")])
            #expect(applied.exit == .exited(0), "\(applied)")
            let identity = server.dataDirectory.appendingPathComponent("agent/identity")
            let nodeCertificate = identity.appendingPathComponent("node.crt").path
            let nodeBundle = identity.appendingPathComponent("bundle.pem").path
            let workloadCertificate = identity.appendingPathComponent("workloads/default/web/svid.pem").path
            try await eventually(timeout: .seconds(20), "node and workload certificates") {
                FileManager.default.fileExists(atPath: nodeCertificate) && FileManager.default.fileExists(atPath: workloadCertificate)
            }
            func roots(in path: String) -> Int {
                ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").components(separatedBy: "BEGIN CERTIFICATE").count - 1
            }
            let initial = try await server.cli(["ca", "status"])
            #expect(initial.stdout.contains("cluster") && initial.stdout.contains("active"), "\(initial)")

            // 1. A new root joins the bundle; nothing is signed by it yet.
            let rotated = try await server.cli(["ca", "rotate"])
            #expect(rotated.exit == .exited(0) && rotated.stdout.contains("trusted"), "\(rotated)")
            let again = try await server.cli(["ca", "rotate"])
            #expect(again.exit != .exited(0) && again.stderr.contains("under way"), "\(again)")
            try await eventually(timeout: .seconds(15), "the node's bundle holds both roots") { roots(in: nodeBundle) == 2 }
            let status = try await curl(["--cacert", server.caPath, "-H", "Authorization: Bearer \(server.token)", "\(server.url)/api/v1/ca"])
            let bundle = try #require((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["bundle"] as? [String])
            #expect(bundle.count == 2)
            let newRoot = try writeTemporaryFile(bundle[1], in: server.dataDirectory, name: "new-root.pem")
            func signedByNewRoot(_ path: String) async throws -> Bool {
                let result = try await shell("\(Self.openssl) verify -CAfile \(newRoot) \(path) 2>&1")
                return result.exit == .exited(0)
            }
            #expect(try await !signedByNewRoot(nodeCertificate))

            // 2. The new root signs: the node renews its own and its workloads' certificates at once.
            let activated = try await server.cli(["ca", "activate"])
            #expect(activated.exit == .exited(0), "\(activated)")
            try await eventually(timeout: .seconds(15), "certificates from the new root") {
                let node = try await signedByNewRoot(nodeCertificate)
                let workload = try await signedByNewRoot(workloadCertificate)
                return node && workload
            }

            // 3. The old root leaves the bundle.
            let retired = try await server.cli(["ca", "retire"])
            #expect(retired.exit == .exited(0) && !retired.stdout.contains("cluster"), "\(retired)")
            try await eventually(timeout: .seconds(15), "the node's bundle holds only the new root") { roots(in: nodeBundle) == 1 }
            let after = try await server.cli(["get", "replicas"])
            #expect(after.exit == .exited(0), "the API still answers with the cluster CA: \(after)")
        }
    }

    @Test("authorization at the destination: a policy admits only its service accounts (OpenSSL with a denied workload certificate gets 403), callers outside the mesh are refused by a policy and, with STRICT, everywhere in the namespace",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl"))
    func authorizationPolicyAndStrictMode() async throws {
        try await withWeftServer { server in
            let shop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("examples/shop").path
            #expect(try await server.cli(["apply", "-f", shop]).exit == .exited(0))
            func vip(_ name: String) async throws -> String {
                try #require(try await server.items("services").first { $0["name"] as? String == name }?["clusterIP"] as? String)
            }
            let frontend = try await vip("frontend"), cart = try await vip("cart"), catalog = try await vip("catalog")
            // The frontend (service account "frontend") may call the cart; its answer includes the cart's.
            try await eventually("the frontend reaches the cart") {
                guard let response = try? await httpGet(host: frontend, port: 80), response.status == 200 else { return false }
                return ((try? response.jsonObject())?["upstream"] as? [String: Any])?["service"] as? String == "cart"
            }
            // This test process is no mesh workload: refused by the cart's policy, not by the catalog.
            // The shop's services are HTTP ports: the node proxy answers the refusal itself, 403 with the reason.
            let refused = try? await httpGet(host: cart, port: 80)
            #expect(refused?.status == 403 && refused?.headers["x-weft-proxy"] == "denied", "\(String(describing: refused))")
            #expect((try? await httpGet(host: catalog, port: 80))?.status == 200)

            // A workload certificate of another service account, straight to the tunnel port: 403.
            let directory = server.dataDirectory.appendingPathComponent("agent/identity/workloads/default/catalog")
            let certificate = directory.appendingPathComponent("svid.pem").path
            try await eventually(timeout: .seconds(20), "the catalog's certificate") { FileManager.default.fileExists(atPath: certificate) }
            let endpoint = try #require((try await server.items("endpoints")).first { ($0["metadata"] as? [String: Any])?["name"] as? String == "cart" }?["endpoints"] as? [[String: Any]]).first
            let destination = "\(endpoint?["ip"] as? String ?? "?"):\((endpoint?["ports"] as? [String: Int])?["80"] ?? 0)"
            let nodes = try await server.cli(["get", "nodes", "-o", "json"])
            let tunnel = try #require(((try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]])?
                .first.flatMap { ($0["status"] as? [String: Any])?["tunnel"] as? String })
            let denied = try await connectThrough(tunnel: tunnel, destination: destination,
                                                  credentials: ["-cert", certificate, "-key", directory.appendingPathComponent("svid.key").path],
                                                  bundle: directory.appendingPathComponent("bundle.pem").path)
            #expect(denied.stdout.contains("403") && denied.stdout.contains("default/catalog may not reach service default/cart"), "\(denied)")

            // STRICT in the namespace: no caller outside the mesh gets anywhere in it.
            let strict = try writeTemporaryFile("""
                apiVersion: weft/v1
                kind: PeerAuthentication
                metadata: {name: mtls}
                spec: {mtls: {mode: STRICT}}
                """, in: server.dataDirectory, name: "strict.yaml")
            #expect(try await server.cli(["apply", "-f", strict]).exit == .exited(0))
            try await eventually(timeout: .seconds(15), "the catalog refuses callers outside the mesh") {
                (try? await httpGet(host: catalog, port: 80))?.status == 403
            }
            #expect(try await server.cli(["delete", "-f", strict]).exit == .exited(0))
            try await eventually(timeout: .seconds(15), "the catalog answers again") {
                (try? await httpGet(host: catalog, port: 80))?.status == 200
            }
        }
    }
}
