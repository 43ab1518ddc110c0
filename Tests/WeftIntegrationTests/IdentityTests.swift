import Foundation
import Testing

/// Node identities: the agent's key stays on the node, its certificate comes through the API from a
/// CSR and is renewed at half its lifetime; OpenSSL is the independent checker.
extension ClusterTests {
    private func run(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
        let child = ChildProcess(executable: URL(fileURLWithPath: executable), arguments: arguments)
        try child.start()
        let exit = try await child.waitForExit(timeout: .seconds(15))
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    @Test("the agent gets a SPIFFE node certificate for a key it keeps (0600), OpenSSL verifies it, it is renewed at half its lifetime, and the signing API checks token, CSR and identity",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl"))
    func nodeCertificateIsIssuedAndRenewed() async throws {
        try await withWeftServer(arguments: ["--dns-listen", "127.0.0.1:0", "--dns-upstream", "none", "--svid-ttl", "10", "--tunnel-port", "0"]) { server in
            let identity = server.dataDirectory.appendingPathComponent("agent/identity")
            let certificatePath = identity.appendingPathComponent("node.crt").path
            let keyPath = identity.appendingPathComponent("node.key").path
            try await eventually(timeout: .seconds(15), "node.crt exists") { FileManager.default.fileExists(atPath: certificatePath) }
            let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            let verify = try await run("/usr/bin/openssl", ["verify", "-CAfile", server.caPath, certificatePath])
            #expect(verify.exit == .exited(0) && verify.stdout.contains("OK"), "\(verify)")
            let text = try await run("/usr/bin/openssl", ["x509", "-in", certificatePath, "-noout", "-text"])
            #expect(text.stdout.contains("URI:spiffe://weft.internal/node/\(server.nodeName)"), "\(text.stdout)")
            let keyMatches = try await run("/usr/bin/openssl", ["x509", "-in", certificatePath, "-noout", "-pubkey"]).stdout
                == (try await run("/usr/bin/openssl", ["pkey", "-in", keyPath, "-pubout"]).stdout)
            #expect(keyMatches, "node.key does not belong to node.crt")

            // Renewal at half of the 10 s lifetime, with a new key.
            let first = try String(contentsOfFile: certificatePath, encoding: .utf8)
            let firstKey = try String(contentsOfFile: keyPath, encoding: .utf8)
            try await eventually(timeout: .seconds(15), "node.crt renewed") {
                (try? String(contentsOfFile: certificatePath, encoding: .utf8)) != first
            }
            #expect(try String(contentsOfFile: keyPath, encoding: .utf8) != firstKey)

            // The signing API: no token → 401; garbage CSR → 400; foreign trust domain → 422.
            let url = "\(server.url)/api/v1/certificates"
            let noToken = try await curl(["--cacert", server.caPath, "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                          "-d", #"{"csr":"x","identity":"spiffe://weft.internal/node/x"}"#, url])
            #expect(noToken.stdout == "401", "\(noToken)")
            let auth = ["--cacert", server.caPath, "-H", "Authorization: Bearer \(server.token)", "-H", "Content-Type: application/json", "-X", "POST"]
            let badCSR = try await curl(auth + ["-w", "\n%{http_code}", "-d", #"{"csr":"not pem","identity":"spiffe://weft.internal/node/x"}"#, url])
            #expect(badCSR.stdout.hasSuffix("400") && badCSR.stdout.contains("csr"), "\(badCSR)")
            let csrPath = server.dataDirectory.appendingPathComponent("x.csr").path
            let keyOut = server.dataDirectory.appendingPathComponent("x.key").path
            let made = try await run("/usr/bin/openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                          "-keyout", keyOut, "-subj", "/", "-out", csrPath])
            #expect(made.exit == .exited(0), "\(made)")
            let csr = try String(contentsOfFile: csrPath, encoding: .utf8)
            func body(_ identity: String) throws -> String {
                String(decoding: try JSONSerialization.data(withJSONObject: ["csr": csr, "identity": identity]), as: UTF8.self)
            }
            let foreign = try await curl(auth + ["-w", "\n%{http_code}", "-d", try body("spiffe://other.example/node/x"), url])
            #expect(foreign.stdout.hasSuffix("422") && foreign.stdout.contains("trust domain"), "\(foreign)")
            // An OpenSSL-made CSR is certified like the agent's.
            let signed = try await curl(auth + ["-w", "\n%{http_code}", "-d", try body("spiffe://weft.internal/ns/default/sa/web"), url])
            #expect(signed.stdout.hasSuffix("201") && signed.stdout.contains("BEGIN CERTIFICATE"), "\(signed)")
        }
    }
}
