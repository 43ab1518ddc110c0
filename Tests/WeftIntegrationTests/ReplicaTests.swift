import Foundation
import Testing
import WeftClient
import WeftCore
#if canImport(Glibc)
import Glibc
#endif

/// Replicas as a user sees them through the real `weft` binary: phases, the port environment, logs and
/// YAML output.
@Suite("Replicas", .serialized)
struct ReplicaTests {
    @Test("a replica whose readiness probe never passes is Running with ready false, not Starting, and is not restarted")
    func neverReadyIsRunning() async throws {
        try await withWeftServer { server in
            let manifest = demoManifest(name: "lame", replicas: 1, marker: "lame-\(UUID().uuidString.prefix(8))", dataDirectory: server.dataDirectory)
                .replacingOccurrences(of: "path: /healthz", with: "path: /no-such-path")
            #expect(manifest.contains("path: /no-such-path"))
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "lame.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            var replica: [String: Any] = [:]
            try await eventually("the replica Running and not ready") {
                replica = try await server.items("replicas").first { $0["deployment"] as? String == "lame" } ?? [:]
                return replica["phase"] as? String == "Running"
            }
            #expect(replica["ready"] as? Bool == false, "\(replica)")
            let message = (replica["status"] as? [String: Any])?["message"] as? String
            #expect(message?.hasPrefix("readiness probe failed") == true, "\(replica)")
            // It stays so: a failing readiness probe keeps the process running.
            try await Task.sleep(for: .seconds(2))
            let later = try #require(try await server.items("replicas").first { $0["deployment"] as? String == "lame" })
            #expect(later["phase"] as? String == "Running" && later["ready"] as? Bool == false, "\(later)")
            #expect(later["restarts"] as? Int == 0, "\(later)")
        }
    }

    @Test("a replica gets PORT and PORT_<NAME>; weft logs -f streams a line written after it started; get -o yaml parses with the fields")
    func portsLogsAndYAML() async throws {
        try await withWeftServer { server in
            let trigger = server.dataDirectory.appendingPathComponent("write-now").path
            let manifest = """
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: talker
                spec:
                  template:
                    spec:
                      command:
                        - /bin/sh
                        - -c
                        - echo ports $PORT $PORT_HTTP $PORT_METRICS $PORT_ADMIN_API; while true; do if [ -f "$TRIGGER" ]; then rm -f "$TRIGGER"; echo after-follow; fi; sleep 0.1; done
                      env:
                        - name: TRIGGER
                          value: "\(trigger)"
                        - name: TEST_DATA_DIR
                          value: "\(server.dataDirectory.path)"
                      ports:
                        - name: http
                        - name: metrics
                        - name: admin-api
                      terminationGracePeriodSeconds: 1
                """
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "talker.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            var replica: [String: Any] = [:]
            try await eventually("the replica Ready") {
                replica = try await server.items("replicas").first { $0["deployment"] as? String == "talker" } ?? [:]
                return replica["ready"] as? Bool == true
            }
            let name = try #require(replica["name"] as? String)
            let ports = try #require((replica["status"] as? [String: Any])?["ports"] as? [String: Int], "\(replica)")
            let http = try #require(ports["http"]), metrics = try #require(ports["metrics"]), admin = try #require(ports["admin-api"])
            #expect(Set([http, metrics, admin]).count == 3, "\(ports)")

            // PORT is the first declared port; PORT_<NAME> upper-cases the name and turns '-' into '_'.
            let expected = "ports \(http) \(http) \(metrics) \(admin)"
            try await eventually("the replica's first line in its log") {
                try await server.cli(["logs", name]).stdout.contains("ports ")
            }
            let logs = try await server.cli(["logs", name])
            #expect(logs.stdout.split(separator: "\n").first.map(String.init) == expected, "\(logs)")

            // weft logs -f prints what is there, then what is written later, until stopped.
            let follow = ChildProcess(executable: try WeftBuild.executable("weft"), arguments: ["logs", name, "-f", "--config", server.configPath])
            try follow.start()
            do {
                #expect(try await follow.waitForLine(startingWith: "ports ", timeout: .seconds(15)) == expected)
                #expect(follow.lines(.stdout).allSatisfy { !$0.hasPrefix("after-follow") })
                FileManager.default.createFile(atPath: trigger, contents: nil)
                try await follow.waitForLine(startingWith: "after-follow", timeout: .seconds(15))
                #expect(follow.isRunning, "weft logs -f ended by itself\n\(follow.transcript)")
            } catch {
                await follow.terminate()
                throw error
            }
            follow.send(SIGINT)
            _ = try await follow.waitForExit(timeout: .seconds(10))

            // -o yaml: a list and a single object read back as YAML with the flat fields and the object's own.
            let list = try await server.cli(["get", "replicas", "-o", "yaml"])
            #expect(list.exit == .exited(0), "\(list)")
            let listed = try #require(try YAMLText.documents(list.stdout).first ?? nil, "\(list)")
            guard case .array(let items)? = listed["items"] else {
                Issue.record("no items list in \(list.stdout)")
                return
            }
            let item = try #require(items.first { $0["name"]?.stringValue == name }, "\(list.stdout)")
            #expect(item["deployment"] == .string("talker") && item["phase"] == .string("Ready") && item["ready"] == .bool(true), "\(item)")
            #expect(item["node"] == .string(server.nodeName) && item["restarts"] == .int(0), "\(item)")
            #expect(item["address"]?.stringValue?.isEmpty == false, "\(item)")
            #expect(item["status"]?["ports"]?["admin-api"] == .int(Int64(admin)), "\(item)")
            #expect(item["kind"] == .string("Replica") && item["metadata"]?["name"] == .string(name), "\(item)")

            let single = try await server.cli(["get", "deployment", "talker", "-o", "yaml"])
            #expect(single.exit == .exited(0), "\(single)")
            let deployment = try #require(try YAMLText.documents(single.stdout).first ?? nil, "\(single)")
            #expect(deployment["kind"] == .string("Deployment") && deployment["name"] == .string("talker"), "\(single.stdout)")
            #expect(deployment["metadata"]?["resourceVersion"]?.stringValue != nil, "\(single.stdout)")
            #expect(deployment["spec"]?["template"]?["spec"]?["env"]?.typeDescription == "a list", "\(single.stdout)")
        }
    }
}
