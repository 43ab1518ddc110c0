import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A weft-demo deployment of `version` behind an `appProtocol: http` service (balanced per request by the
/// node proxy), with the given strategy block (indented for `spec:`).
func rolloutManifest(name: String, replicas: Int, version: String, failRate: Double = 0, strategy: String,
                     marker: String, dataDirectory: URL) -> String {
    """
    apiVersion: weft/v1
    kind: Deployment
    metadata:
      name: \(name)
    spec:
      replicas: \(replicas)
    \(strategy.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
      template:
        metadata:
          labels:
            app: \(name)
        spec:
          command: ["weft-demo"]
          env:
            - name: SERVICE_NAME
              value: \(name)
            - name: VERSION
              value: \(version)
            - name: FAIL_RATE
              value: "\(failRate)"
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
          terminationGracePeriodSeconds: 5
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
          appProtocol: http
    """
}

/// End to end: canary rollouts, analysis and rollback, and rolling updates under load, through the real
/// binary's L7 proxy. Part of the serialized single-node suite.
extension ClusterTests {
    private func deployment(_ server: WeftServer, _ name: String) async throws -> [String: Any] {
        try #require(try await server.items("deployments").first { $0["name"] as? String == name })
    }

    private func rollout(_ server: WeftServer, _ name: String) async throws -> [String: Any] {
        ((try await deployment(server, name))["status"] as? [String: Any])?["rollout"] as? [String: Any] ?? [:]
    }

    private func replicas(_ server: WeftServer, _ deployment: String) async throws -> [[String: Any]] {
        try await server.items("replicas").filter { $0["deployment"] as? String == deployment }
    }

    private func vip(_ server: WeftServer, _ service: String) async throws -> String {
        let item = try #require(try await server.items("services").first { $0["name"] as? String == service })
        return try #require(item["clusterIP"] as? String)
    }

    private func apply(_ server: WeftServer, _ manifest: String, _ file: String) async throws {
        let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: file)
        let result = try await server.cli(["apply", "-f", path])
        #expect(result.exit == .exited(0), "\(result)")
    }

    @Test("a canary at weight 10 gets 10% ± 1 point of 10,000 requests, pauses until promoted, and becomes the stable version")
    func canaryWeightIsExact() async throws {
        try await withWeftServer { server in
            let marker = "canary-\(UUID().uuidString.prefix(8))"
            let strategy = """
            strategy:
              type: Canary
              canary:
                steps: [{setWeight: 10}, {pause: {}}, {setWeight: 100}]
            """
            try await apply(server, rolloutManifest(name: "shop", replicas: 3, version: "v1", strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v1.yaml")
            try await eventually("3 ready v1 replicas, rollout Healthy") {
                let ready = try await replicas(server, "shop").filter { $0["ready"] as? Bool == true }.count
                let phase = try await rollout(server, "shop")["phase"] as? String
                return ready == 3 && phase == "Healthy"
            }
            let ip = try await vip(server, "shop")
            try await eventually("the VIP answers") { (try? await httpGet(host: ip, port: 80).status) == 200 }

            try await apply(server, rolloutManifest(name: "shop", replicas: 3, version: "v2", strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v2.yaml")
            try await eventually("the canary runs at weight 10, paused, with its replica ready") {
                let r = try await rollout(server, "shop")
                let canary = r["canaryRevision"] as? String
                let ready = try await replicas(server, "shop").filter { $0["ready"] as? Bool == true }
                return r["weight"] as? Int == 10 && r["phase"] as? String == "Paused" && canary != nil && ready.count == 4
            }
            // The proxy follows the split once the endpoints carry it.
            try await eventually("requests reach the canary") {
                let tally = await KeepAliveLoad(host: ip, port: 80, connections: 2, total: 200).finish()
                return tally.count(version: "v2") > 0
            }

            let tally = await KeepAliveLoad(host: ip, port: 80, connections: 4, total: 10_000).finish()
            #expect(tally.errors.isEmpty, "requests failed: \(tally.errors.prefix(3))")
            #expect(tally.count == 10_000)
            let share = Double(tally.count(version: "v2")) / Double(max(tally.count, 1))
            print("canary at weight 10: \(tally.count(version: "v2")) of \(tally.count) requests (\(String(format: "%.2f", share * 100))%) went to the canary")
            #expect((0.09...0.11).contains(share), "canary share \(share) of \(tally.count) requests, expected 10% ± 1 point")
            #expect(tally.count(version: "v1") + tally.count(version: "v2") == tally.count)

            let status = try await server.cli(["rollout", "status", "shop"])
            #expect(status.exit == .exited(0), "\(status)")
            #expect(status.stdout.contains("Paused") && status.stdout.contains("canary weight 10%"), "\(status)")

            let promoted = try await server.cli(["rollout", "promote", "shop"])
            #expect(promoted.exit == .exited(0), "\(promoted)")
            let watched = try await server.cli(["rollout", "status", "shop", "--watch"], timeout: .seconds(90))
            #expect(watched.exit == .exited(0), "\(watched)")
            let final = try await replicas(server, "shop").filter { $0["ready"] as? Bool == true }
            #expect(final.count == 3)
            let answers = await KeepAliveLoad(host: ip, port: 80, connections: 2, total: 200).finish()
            #expect(answers.count(version: "v2") == 200, "after promotion every answer is v2: \(answers.count(version: "v1")) were v1")

            let history = try await server.cli(["rollout", "history", "shop"])
            #expect(history.stdout.contains("VERSION=v2") && history.stdout.split(separator: "\n").count == 3, "\(history)")
            let described = try await server.cli(["describe", "deployment", "shop"])
            #expect(described.stdout.contains("CanaryStarted") && described.stdout.contains("Promoted"), "\(described)")
        }
    }

    @Test("a canary failing half its requests is rolled back by analysis within interval × failureLimit, errors only from its share")
    func failingCanaryIsRolledBack() async throws {
        try await withWeftServer { server in
            let marker = "rollback-\(UUID().uuidString.prefix(8))"
            let strategy = """
            strategy:
              type: Canary
              canary:
                steps: [{setWeight: 20}, {pause: {duration: 2m}}, {setWeight: 100}]
                analysis: {successRate: 0.95, interval: 2s, failureLimit: 2, minRequests: 10}
            """
            try await apply(server, rolloutManifest(name: "pay", replicas: 2, version: "v1", strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v1.yaml")
            try await eventually("2 ready v1 replicas") {
                try await replicas(server, "pay").filter { $0["ready"] as? Bool == true }.count == 2
            }
            let stable = Set(try await replicas(server, "pay").compactMap { $0["name"] as? String })
            let ip = try await vip(server, "pay")
            try await eventually("the VIP answers") { (try? await httpGet(host: ip, port: 80).status) == 200 }

            let load = KeepAliveLoad(host: ip, port: 80, connections: 3, deadline: .seconds(90))
            try await apply(server, rolloutManifest(name: "pay", replicas: 2, version: "v2", failRate: 0.5, strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v2.yaml")
            try await eventually(timeout: .seconds(60), "the canary gets requests") { load.tally.count(version: "v2") > 0 }
            let firstCanary = try #require(load.tally.answers.first { $0.version == "v2" }?.at)
            try await eventually(timeout: .seconds(60), "analysis aborts the rollout") {
                (try await rollout(server, "pay"))["phase"] as? String == "Degraded"
            }
            let abortedAt = load.elapsed
            print("failing canary: aborted \(String(format: "%.1f", abortedAt - firstCanary)) s after its first answer (interval 2 s × failureLimit 2)")
            // Two 2 s intervals, plus up to one heartbeat (1 s) for the figures to arrive and one interval's
            // alignment: the canary must be gone well before a third failed interval could pass.
            #expect(abortedAt - firstCanary <= 2 * 2 + 3, "aborted \(abortedAt - firstCanary) s after the canary's first answer")
            try await eventually("the canary's replicas are gone") {
                Set(try await replicas(server, "pay").compactMap { $0["name"] as? String }) == stable
            }
            let settled = load.elapsed
            try await Task.sleep(for: .seconds(2))
            let tally = await load.stop()

            #expect(tally.errors.isEmpty, "requests failed without an answer: \(tally.errors.prefix(3))")
            let failures = tally.answers.filter { $0.status != 200 }
            #expect(!failures.isEmpty, "the canary's injected failures were seen")
            #expect(failures.allSatisfy { $0.version == "v2" && $0.status == 500 }, "errors came only from the canary")
            #expect(tally.answers.filter { $0.at > settled + 0.5 }.allSatisfy { $0.version == "v1" && $0.status == 200 })
            let after = try await replicas(server, "pay")
            #expect(after.allSatisfy { $0["restarts"] as? Int == 0 && $0["ready"] as? Bool == true }, "the stable version is untouched")
            let r = try await rollout(server, "pay")
            #expect(r["weight"] as? Int == 0)
            #expect((r["message"] as? String ?? "").contains("success rate"), "\(r)")
            let described = try await server.cli(["describe", "deployment", "pay"])
            #expect(described.stdout.contains("Aborted"), "\(described)")
        }
    }

    @Test("a rolling update of the shop's cart under wrk load through the VIP fails 0 requests")
    func rollingUpdateUnderLoad() async throws {
        guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipping: wrk is not installed (apt-get install wrk; .ci/run installs it)")
            return
        }
        try await withWeftServer { server in
            let marker = "rolling-\(UUID().uuidString.prefix(8))"
            let strategy = """
            strategy:
              type: RollingUpdate
              rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
            """
            try await apply(server, rolloutManifest(name: "cart", replicas: 3, version: "v1", strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v1.yaml")
            try await eventually("3 ready v1 replicas") {
                try await replicas(server, "cart").filter { $0["ready"] as? Bool == true }.count == 3
            }
            let old = Set(try await replicas(server, "cart").compactMap { $0["name"] as? String })
            let ip = try await vip(server, "cart")
            try await eventually("the VIP answers") { (try? await httpGet(host: ip, port: 80).status) == 200 }

            let load = ChildProcess(executable: URL(fileURLWithPath: wrk), arguments: ["-t", "2", "-c", "8", "-d", "30s", "--latency", "http://\(ip):80/"])
            try load.start()
            try await Task.sleep(for: .seconds(2))
            try await apply(server, rolloutManifest(name: "cart", replicas: 3, version: "v2", strategy: strategy, marker: marker,
                                                    dataDirectory: server.dataDirectory), "v2.yaml")
            try await eventually(timeout: .seconds(26), "3 ready v2 replicas and the old ones gone") {
                let now = try await replicas(server, "cart")
                return now.count == 3 && now.allSatisfy { $0["ready"] as? Bool == true } && Set(now.compactMap { $0["name"] as? String }).isDisjoint(with: old)
            }
            _ = try await load.waitForExit(timeout: .seconds(60))
            let report = load.lines(.stdout).joined(separator: "\n")
            let requests = report.split(separator: "\n").first { $0.contains("requests in") }
                .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) } ?? 0
            print("rolling update under wrk:\n\(report)")
            #expect(requests > 1000, "wrk sent \(requests) requests:\n\(report)")
            #expect(!report.contains("Non-2xx or 3xx responses"), "failed requests:\n\(report)")
            #expect(!report.contains("Socket errors"), "failed requests:\n\(report)")
            let answers = await KeepAliveLoad(host: ip, port: 80, connections: 2, total: 100).finish()
            #expect(answers.count(version: "v2") == 100)
        }
    }
}
