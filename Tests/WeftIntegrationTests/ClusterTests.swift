import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests against the real `weft` binary: a server on 127.0.0.1 port 0 with a temporary
/// data directory, driven with the CLI and curl.
@Suite("Single-node cluster", .serialized)
struct ClusterTests {
    private func readyReplicas(_ server: WeftServer, deployment: String) async throws -> [[String: Any]] {
        try await server.items("replicas").filter { ($0["deployment"] as? String) == deployment && ($0["ready"] as? Bool) == true }
    }

    @Test("apply, self-heal after kill -9, graceful and crash restarts without duplicates")
    func lifecycle() async throws {
        try await withWeftServer { server in
            let marker = "lifecycle-\(UUID().uuidString.prefix(8))"
            let path = try writeTemporaryFile(demoManifest(name: "web", replicas: 3, marker: marker, dataDirectory: server.dataDirectory),
                                              in: server.dataDirectory, name: "web.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            #expect(applied.stdout.contains("deployment/web created"))

            try await eventually("3 ready replicas") { try await readyReplicas(server, deployment: "web").count == 3 }
            let replicas = try await server.items("replicas")
            for item in replicas {
                for field in ["name", "namespace", "deployment", "node", "phase", "ready", "address", "restarts"] {
                    #expect(item[field] != nil, "replica item lacks \(field): \(item)")
                }
                #expect(item["phase"] as? String == "Ready")
                #expect(item["node"] as? String == server.nodeName)
            }
            #expect(processes(withEnvironment: "TEST_MARKER=\(marker)").count == 3)

            // kill -9 one replica's process: it is replaced and the deployment is back at 3 ready.
            let victim = try #require(replicas.first)
            let victimName = try #require(victim["name"] as? String)
            let pid = try #require((victim["status"] as? [String: Any])?["pid"] as? Int)
            kill(Int32(pid), SIGKILL)
            try await eventually("the killed replica restarted and ready") {
                let items = try await server.items("replicas")
                guard let item = items.first(where: { $0["name"] as? String == victimName }) else { return false }
                return (item["restarts"] as? Int ?? 0) >= 1 && item["ready"] as? Bool == true
                    && items.filter { $0["ready"] as? Bool == true }.count == 3
            }
            let afterKill = try await server.items("replicas").first { $0["name"] as? String == victimName }
            #expect(((afterKill?["status"] as? [String: Any])?["lastExitStatus"] as? String)?.contains("9") == true)
            #expect(processes(withEnvironment: "TEST_MARKER=\(marker)").count == 3)

            // Graceful restart: replicas stop with the server, the same objects come back, no duplicates.
            let namesBefore = Set(try await server.items("replicas").compactMap { $0["name"] as? String })
            let exit = try await server.stop()
            #expect(exit == .exited(0))
            #expect(processes(withEnvironment: "TEST_MARKER=\(marker)").isEmpty, "replicas outlived a graceful stop")
            try await server.restart()
            try await eventually("3 ready replicas after a graceful restart") { try await readyReplicas(server, deployment: "web").count == 3 }
            #expect(Set(try await server.items("replicas").compactMap { $0["name"] as? String }) == namesBefore)
            #expect(try await server.items("deployments").count == 1)
            #expect(try await server.items("services").count == 1)
            #expect(processes(withEnvironment: "TEST_MARKER=\(marker)").count == 3)

            // Crash restart (kill -9 of the server): leftover replica processes are replaced, never duplicated.
            let orphans = Set(processes(withEnvironment: "TEST_MARKER=\(marker)"))
            try await server.crash()
            try await server.restart()
            try await eventually("3 ready replicas after a crash restart") { try await readyReplicas(server, deployment: "web").count == 3 }
            try await eventually("leftover processes gone, exactly 3 running") {
                let now = Set(processes(withEnvironment: "TEST_MARKER=\(marker)"))
                return now.count == 3 && now.isDisjoint(with: orphans)
            }
            #expect(Set(try await server.items("replicas").compactMap { $0["name"] as? String }) == namesBefore)

            // Scale down and delete: processes follow.
            let scaled = try await server.cli(["scale", "deployment", "web", "--replicas", "1"])
            #expect(scaled.exit == .exited(0), "\(scaled)")
            try await eventually("scaled to 1") {
                try await server.items("replicas").count == 1 && processes(withEnvironment: "TEST_MARKER=\(marker)").count == 1
            }
            let deleted = try await server.cli(["delete", "-f", path])
            #expect(deleted.exit == .exited(0), "\(deleted)")
            try await eventually("replicas gone after delete") {
                try await server.items("replicas").isEmpty && processes(withEnvironment: "TEST_MARKER=\(marker)").isEmpty
            }
        }
    }

    @Test("a replica asking for the netns runtime on a node that cannot run it stays Pending with the reason in weft describe, never restarted; runtime: oci without image or rootfs is refused, with one it is Pending as well")
    func netnsUnavailable() async throws {
        try await withWeftServer { server in
            // The server's own agent has no --pod-cidr (and may not be root): it cannot run netns replicas.
            let manifest = demoManifest(name: "isolated", replicas: 1, marker: "netns-\(UUID().uuidString.prefix(8))", dataDirectory: server.dataDirectory)
                .replacingOccurrences(of: "      command: [\"weft-demo\"]\n", with: "      command: [\"weft-demo\"]\n      runtime: netns\n")
            #expect(manifest.contains("runtime: netns"))
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "isolated.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            var replica: [String: Any] = [:]
            try await eventually("the replica Pending with a reason") {
                replica = try await server.items("replicas").first { $0["deployment"] as? String == "isolated" } ?? [:]
                let name = replica["name"] as? String ?? ""
                guard replica["phase"] as? String == "Pending", !name.isEmpty else { return false }
                return try await server.cli(["describe", "replica", name]).stdout.contains("--pod-cidr")
            }
            let name = try #require(replica["name"] as? String)
            try await Task.sleep(for: .seconds(2))
            let described = try await server.cli(["describe", "replica", name])
            #expect(described.stdout.contains("Pending") && described.stdout.contains("has no pod network"), "\(described.stdout)")
            #expect(described.stdout.contains("Runtime:") && described.stdout.contains("netns"), "\(described.stdout)")
            let later = try #require(try await server.items("replicas").first { $0["name"] as? String == name })
            #expect(later["restarts"] as? Int == 0 && later["phase"] as? String == "Pending", "\(later)")
            #expect(later["pid"] is NSNull || later["pid"] == nil, "a process was started: \(later)")

            // runtime: oci needs an image or a rootfs; with one, on this node (no pod network) it stays Pending too.
            let oci = try writeTemporaryFile(manifest.replacingOccurrences(of: "runtime: netns", with: "runtime: oci"), in: server.dataDirectory, name: "oci.yaml")
            let refused = try await server.cli(["apply", "-f", oci])
            #expect(refused.exit != .exited(0))
            #expect(refused.stderr.contains("spec.template.spec.image") && refused.stderr.contains("is required with runtime: oci"), "\(refused)")
            let withRootfs = manifest.replacingOccurrences(of: "runtime: netns", with: "runtime: oci\n      rootfs: /nonexistent")
                .replacingOccurrences(of: "isolated", with: "contained")
            let ociPath = try writeTemporaryFile(withRootfs, in: server.dataDirectory, name: "oci-rootfs.yaml")
            #expect(try await server.cli(["apply", "-f", ociPath]).exit == .exited(0))
            try await eventually("the oci replica Pending with a reason") {
                let item = try await server.items("replicas").first { $0["deployment"] as? String == "contained" } ?? [:]
                return item["phase"] as? String == "Pending" && (item["message"] as? String ?? "").contains("the oci runtime")
            }
        }
    }

    @Test("an invalid manifest is refused with its field path and nothing is stored")
    func invalidManifest() async throws {
        try await withWeftServer { server in
            let valid = demoManifest(name: "ok", replicas: 1, marker: "invalid-\(UUID().uuidString.prefix(8))", dataDirectory: server.dataDirectory)
            let invalid = """
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: broken
                spec:
                  replicas: 2
                  template:
                    spec:
                      command: ["weft-demo"]
                      ports:
                        - name: http
                          containerPort: 70000
                """
            let path = try writeTemporaryFile(valid + "\n---\n" + invalid, in: server.dataDirectory, name: "mixed.yaml")
            let result = try await server.cli(["apply", "-f", path])
            #expect(result.exit != .exited(0))
            #expect(result.stderr.contains("spec.template.spec.ports[0].containerPort"), "\(result)")
            #expect(result.stderr.contains("mixed.yaml"), "\(result)")
            #expect(try await server.items("deployments").isEmpty)
            #expect(try await server.items("services").isEmpty)

            let unknown = try writeTemporaryFile(invalid.replacingOccurrences(of: "replicas: 2", with: "replicaz: 2"), in: server.dataDirectory, name: "typo.yaml")
            let typo = try await server.cli(["apply", "-f", unknown])
            #expect(typo.exit != .exited(0))
            #expect(typo.stderr.contains("spec.replicaz"), "\(typo)")
        }
    }

    @Test("authorization policies and peer authentications: apply, get, describe, delete with the CLI; a bad one applies nothing")
    func authorizationObjects() async throws {
        try await withWeftServer { server in
            let manifests = """
                apiVersion: weft/v1
                kind: AuthorizationPolicy
                metadata: {name: cart-callers}
                spec:
                  service: cart
                  allow:
                    - serviceAccounts: [frontend, "payments/worker"]
                    - namespaces: [ops]
                ---
                apiVersion: weft/v1
                kind: PeerAuthentication
                metadata: {name: mtls}
                spec:
                  mtls: {mode: STRICT}
                """
            let path = try writeTemporaryFile(manifests, in: server.dataDirectory, name: "policy.yaml")
            let applied = try await server.cli(["apply", "-f", path, "-n", "shop"])
            #expect(applied.exit == .exited(0), "\(applied)")
            #expect(applied.stdout.contains("authorizationpolicy/cart-callers created"), "\(applied)")
            #expect(applied.stdout.contains("peerauthentication/mtls created"), "\(applied)")

            let table = try await server.cli(["get", "authz", "-n", "shop"])
            #expect(table.stdout.split(separator: "\n").first?.split(separator: " ", omittingEmptySubsequences: true) == ["NAME", "SERVICE", "RULES", "AGE"], "\(table)")
            #expect(table.stdout.contains("cart-callers"), "\(table)")
            let peers = try await server.items("peerauth", namespace: "shop")
            #expect(peers.map { $0["mode"] as? String } == ["STRICT"])
            let described = try await server.cli(["describe", "authorizationpolicy", "cart-callers", "-n", "shop"])
            #expect(described.stdout.contains("service accounts shop/frontend, payments/worker"), "\(described)")
            #expect(described.stdout.contains("any service account in namespace ops"), "\(described)")
            #expect(described.stdout.contains("no such service"), "\(described)")

            let bad = try writeTemporaryFile(manifests.replacingOccurrences(of: "cart-callers", with: "other")
                .replacingOccurrences(of: "\"payments/worker\"", with: "\"a/b/c\""), in: server.dataDirectory, name: "bad.yaml")
            let refused = try await server.cli(["apply", "-f", bad, "-n", "shop"])
            #expect(refused.exit != .exited(0))
            #expect(refused.stderr.contains("bad.yaml: document 1 (AuthorizationPolicy/other): spec.allow[0].serviceAccounts[1]"), "\(refused)")
            #expect(try await server.items("authz", namespace: "shop").count == 1)

            let deleted = try await server.cli(["delete", "-f", path, "-n", "shop"])
            #expect(deleted.exit == .exited(0), "\(deleted)")
            #expect(try await server.items("authorizationpolicies", namespace: "shop").isEmpty)
            #expect(try await server.items("peerauthentications", namespace: "shop").isEmpty)
        }
    }

    @Test("the API refuses requests without the token — known routes, watches and unknown paths alike — and serves health and cluster-info without one")
    func authentication() async throws {
        try await withWeftServer { server in
            /// The status code of `method path` with `headers`.
            func status(_ method: String, _ path: String, _ headers: [String] = []) async throws -> String {
                try await curl(["--cacert", server.caPath, "-o", "/dev/null", "-w", "%{http_code}", "-X", method]
                               + headers.flatMap { ["-H", $0] } + ["\(server.url)\(path)"]).stdout
            }
            // An unknown path answers 401 like a known one, so a client without a credential cannot tell
            // which routes exist.
            let refused: [(String, String)] = [
                ("GET", "/api/v1/deployments"), ("GET", "/api/v1/namespaces/default/replicas/r1/log?follow=true"),
                ("GET", "/api/v1/namespaces/default/services?watch=true&resourceVersion=0"), ("POST", "/api/v1/apply"),
                ("DELETE", "/api/v1/nodes/n1"), ("GET", "/api/v1/no-such-kind"), ("GET", "/api/v1/namespaces/default/nothing/here"),
                ("GET", "/api/v2/deployments"), ("GET", "/no/such/path"), ("DELETE", "/healthz"), ("POST", "/api/v1/cluster-info"),
            ]
            for (method, path) in refused {
                #expect(try await status(method, path) == "401", "\(method) \(path) without a token")
                #expect(try await status(method, path, ["Authorization: Bearer wrong"]) == "401", "\(method) \(path) with a wrong token")
                #expect(try await status(method, path, ["Authorization: Basic \(server.token)"]) == "401", "\(method) \(path), not a bearer token")
            }
            // With the token, an unknown path is what it is.
            #expect(try await status("GET", "/api/v1/no-such-kind", ["Authorization: Bearer \(server.token)"]) == "404")
            let health = try await curl(["--cacert", server.caPath, "\(server.url)/healthz"])
            #expect(health.stdout == "ok")
            // Open for joining nodes: public data only (the CA certificate, never a key or a credential).
            let info = try await curl(["--cacert", server.caPath, "\(server.url)/api/v1/cluster-info"])
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any], "\(info)")
            #expect((fields["certificateAuthority"] as? String)?.hasPrefix("-----BEGIN CERTIFICATE-----") == true, "\(info)")
            #expect(!info.stdout.contains("PRIVATE KEY") && !info.stdout.contains(server.token), "\(info)")
            let withToken = try await curl(["--cacert", server.caPath, "-H", "Authorization: Bearer \(server.token)", "\(server.url)/api/v1/deployments"])
            #expect(withToken.stdout.contains("\"items\""), "\(withToken)")
            // The TLS certificate verifies against the cluster CA (curl checks it) and the secrets are owner-only.
            for secret in ["pki/token", "pki/ca.key", "pki/server.key", "admin.yaml"] {
                let mode = try FileManager.default.attributesOfItem(atPath: server.dataDirectory.appendingPathComponent(secret).path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(secret) has mode \(String(mode ?? 0, radix: 8))")
            }
        }
    }

    @Test("a watch resumed from an old resource version replays what it missed")
    func watchResume() async throws {
        try await withWeftServer { server in
            let auth = ["--cacert", server.caPath, "-H", "Authorization: Bearer \(server.token)"]
            let list = try await curl(auth + ["\(server.url)/api/v1/namespaces/default/services"])
            let listed = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let start = try #require(listed?["resourceVersion"] as? String)

            let manifest = """
                apiVersion: weft/v1
                kind: Service
                metadata:
                  name: echo
                spec:
                  selector:
                    app: echo
                  ports:
                    - port: 80
                """
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "svc.yaml")
            #expect(try await server.cli(["apply", "-f", path]).exit == .exited(0))
            let changed = try writeTemporaryFile(manifest.replacingOccurrences(of: "port: 80", with: "port: 81"), in: server.dataDirectory, name: "svc2.yaml")
            #expect(try await server.cli(["apply", "-f", changed]).exit == .exited(0))
            #expect(try await server.cli(["delete", "service", "echo"]).exit == .exited(0))

            // Watch from before all three changes; curl ends the stream after 3 s.
            let watch = try await curl(auth + ["-N", "--max-time", "3",
                                               "\(server.url)/api/v1/namespaces/default/services?watch=true&resourceVersion=\(start)"])
            let events = watch.stdout.split(separator: "\n").compactMap { line -> (String, Int)? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let type = object["type"] as? String, type != "BOOKMARK",
                      let body = object["object"] as? [String: Any],
                      let port = ((body["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first?["port"] as? Int else { return nil }
                return (type, port)
            }
            #expect(events.map(\.0) == ["ADDED", "MODIFIED", "DELETED"], "\(watch)")
            #expect(events.map(\.1) == [80, 81, 81])
        }
    }

    @Test("a crash loop shows as Failing with restarts and exit status; a failing liveness probe restarts; logs are served")
    func crashLoopAndLiveness() async throws {
        try await withWeftServer { server in
            let manifest = """
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: crasher
                spec:
                  template:
                    spec:
                      command: ["/bin/sh", "-c", "echo starting $WEFT_REPLICA_NAME; exit 3"]
                ---
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: unhealthy
                spec:
                  template:
                    spec:
                      command: ["/bin/sh", "-c", "echo up; exec sleep 300"]
                      livenessProbe:
                        exec:
                          command: ["/bin/false"]
                        periodSeconds: 1
                        failureThreshold: 1
                      terminationGracePeriodSeconds: 1
                """
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "crash.yaml")
            #expect(try await server.cli(["apply", "-f", path]).exit == .exited(0))
            try await eventually("crasher in Failing with restarts") {
                guard let item = try await server.items("replicas").first(where: { $0["deployment"] as? String == "crasher" }) else { return false }
                let status = item["status"] as? [String: Any]
                return item["phase"] as? String == "Failing" && (item["restarts"] as? Int ?? 0) >= 2
                    && (status?["lastExitStatus"] as? String)?.contains("3") == true
            }
            try await eventually("unhealthy restarted by its liveness probe") {
                guard let item = try await server.items("replicas").first(where: { $0["deployment"] as? String == "unhealthy" }) else { return false }
                return (item["restarts"] as? Int ?? 0) >= 1
            }
            let name = try #require(try await server.items("replicas").first(where: { $0["deployment"] as? String == "crasher" })?["name"] as? String)
            let logs = try await server.cli(["logs", name])
            #expect(logs.exit == .exited(0), "\(logs)")
            #expect(logs.stdout.contains("starting \(name)"), "\(logs)")
            let described = try await server.cli(["describe", "replica", name])
            #expect(described.stdout.contains("Failing"), "\(described)")
        }
    }

    @Test("a replica no node can take stays Pending, and weft describe says which filter turned how many nodes down")
    func unschedulableReason() async throws {
        try await withWeftServer { server in
            let manifest = """
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: too-big
                spec:
                  template:
                    spec:
                      command: ["/bin/sh", "-c", "exec sleep 300"]
                      resources:
                        requests: {cpu: "100000"}
                ---
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: elsewhere
                spec:
                  template:
                    spec:
                      command: ["/bin/sh", "-c", "exec sleep 300"]
                      nodeSelector: {disktype: ssd}
                """
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "unschedulable.yaml")
            #expect(try await server.cli(["apply", "-f", path]).exit == .exited(0))
            for (deployment, reason) in [("too-big", "0/1 nodes available: 1 insufficient cpu"),
                                         ("elsewhere", "0/1 nodes available: 1 node(s) didn't match nodeSelector")] {
                var name = ""
                try await eventually("\(deployment) pending with its reason") {
                    guard let item = try await server.items("replicas").first(where: { $0["deployment"] as? String == deployment }),
                          let status = item["status"] as? [String: Any] else { return false }
                    name = item["name"] as? String ?? ""
                    return item["phase"] as? String == "Pending" && status["message"] as? String == reason
                }
                let described = try await server.cli(["describe", "replica", name])
                #expect(described.stdout.contains("Message:") && described.stdout.contains(reason), "\(described)")
            }
        }
    }
}
