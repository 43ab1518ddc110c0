import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ConfigMaps and Secrets end to end: env and files of a weft-demo replica, redaction in the CLI,
/// encryption in the store file, Pending on a missing ConfigMap, and a rollout when one changes.
@Suite("ConfigMaps and Secrets", .serialized)
struct ConfigTests {
    static let password = "pw-\(UUID().uuidString.prefix(12))"

    func manifest(version: String, marker: String, dataDirectory: URL) -> String {
        """
        apiVersion: weft/v1
        kind: ConfigMap
        metadata:
          name: web-config
        data:
          VERSION: "\(version)"
          settings.ini: "mode=fast"
        ---
        apiVersion: weft/v1
        kind: Secret
        metadata:
          name: db
        stringData:
          password: "\(Self.password)"
        ---
        apiVersion: weft/v1
        kind: Deployment
        metadata:
          name: cfg
        spec:
          replicas: 2
          template:
            metadata:
              labels:
                app: cfg
            spec:
              command: ["weft-demo"]
              envFrom:
                - configMapRef:
                    name: web-config
              env:
                - name: TEST_MARKER
                  value: "\(marker)"
                - name: TEST_DATA_DIR
                  value: "\(dataDirectory.path)"
                - name: DB_PASSWORD
                  valueFrom:
                    secretKeyRef: {name: db, key: password}
              volumes:
                - name: creds
                  secret: {secretName: db}
                - name: settings
                  configMap:
                    name: web-config
                    items: [{key: settings.ini, path: conf/settings.ini}]
              volumeMounts:
                - {name: creds, mountPath: /run/secrets/db}
              ports:
                - name: http
              readinessProbe:
                httpGet: {path: /healthz, port: http}
                periodSeconds: 1
              terminationGracePeriodSeconds: 2
        """
    }

    private func ready(_ server: WeftServer) async throws -> [[String: Any]] {
        try await server.items("replicas").filter { ($0["deployment"] as? String) == "cfg" && ($0["ready"] as? Bool) == true }
    }

    /// The environment of a live process, from /proc.
    private func environment(of pid: Int) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        var out: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            out[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return out
    }

    @Test("replicas get env and files from a ConfigMap and a Secret; the CLI redacts; the store is encrypted; a ConfigMap change rolls the deployment")
    func endToEnd() async throws {
        try await withWeftServer { server in
            let marker = "config-\(UUID().uuidString.prefix(8))"
            let path = try writeTemporaryFile(manifest(version: "from-configmap", marker: marker, dataDirectory: server.dataDirectory),
                                              in: server.dataDirectory, name: "cfg.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            #expect(applied.stdout.contains("configmap/web-config created") && applied.stdout.contains("secret/db created"), "\(applied)")
            try await eventually("2 ready replicas") { try await ready(server).count == 2 }

            let replica = try #require(try await ready(server).first)
            let address = try #require(replica["address"] as? String)
            let colon = try #require(address.lastIndex(of: ":"))
            let answer = try await httpGet(host: String(address[..<colon]), port: Int(address[address.index(after: colon)...])!)
            #expect(try answer.jsonObject()["version"] as? String == "from-configmap", "\(answer)")

            let pid = try #require((replica["status"] as? [String: Any])?["pid"] as? Int)
            let env = try environment(of: pid)
            #expect(env["DB_PASSWORD"] == Self.password)
            #expect(env["VERSION"] == "from-configmap")
            let credsDirectory = try #require(env["WEFT_VOLUME_CREDS"])
            let settingsDirectory = try #require(env["WEFT_VOLUME_SETTINGS"])
            #expect(credsDirectory.hasPrefix(server.dataDirectory.path))
            let passwordFile = credsDirectory + "/password"
            #expect(try String(contentsOfFile: passwordFile, encoding: .utf8) == Self.password)
            #expect(try String(contentsOfFile: settingsDirectory + "/conf/settings.ini", encoding: .utf8) == "mode=fast")
            var info = stat()
            #expect(stat(passwordFile, &info) == 0 && info.st_mode & 0o777 == 0o600)
            #expect(stat(credsDirectory, &info) == 0 && info.st_mode & 0o777 == 0o700)

            // The CLI never prints the value unless asked.
            let table = try await server.cli(["get", "secrets"])
            #expect(table.exit == .exited(0))
            #expect(table.stdout.contains("TYPE") && table.stdout.contains("Opaque"), "\(table)")
            let base64 = Data(Self.password.utf8).base64EncodedString()
            for format in ["yaml", "json"] {
                let shown = try await server.cli(["get", "secret", "db", "-o", format])
                #expect(shown.exit == .exited(0))
                #expect(!shown.stdout.contains(Self.password) && !shown.stdout.contains(base64), "\(shown)")
                #expect(shown.stdout.contains("<redacted>"))
            }
            let described = try await server.cli(["describe", "secret", "db"])
            #expect(described.stdout.contains("password:") && described.stdout.contains("\(Self.password.utf8.count) bytes"), "\(described)")
            #expect(!described.stdout.contains(Self.password) && !described.stdout.contains(base64))
            let deploymentText = try await server.cli(["describe", "deployment", "cfg"])
            #expect(deploymentText.stdout.contains("<from secret/db key password>") && deploymentText.stdout.contains("configmap/web-config"), "\(deploymentText)")
            #expect(deploymentText.stdout.contains("secret/db at /run/secrets/db (WEFT_VOLUME_CREDS)"), "\(deploymentText)")
            #expect(!deploymentText.stdout.contains(Self.password))
            let revealed = try await server.cli(["get", "secret", "db", "-o", "json", "--show-secrets"])
            #expect(revealed.stdout.contains(base64))

            // Neither the value nor its base64 is in the store's files.
            var stored = Data()
            for name in ["state.db", "state.db-wal"] {
                stored += (try? Data(contentsOf: server.dataDirectory.appendingPathComponent(name))) ?? Data()
            }
            #expect(!stored.isEmpty)
            #expect(stored.range(of: Data(Self.password.utf8)) == nil && stored.range(of: Data(base64.utf8)) == nil)
            #expect(try (FileManager.default.attributesOfItem(atPath: server.dataDirectory.appendingPathComponent("secrets.key").path)[.posixPermissions] as? Int) == 0o600)

            // A changed ConfigMap rolls the replicas to a new template; their volume files go with them.
            let oldHashes = Set(try await server.items("replicas").compactMap { ($0["spec"] as? [String: Any])?["templateHash"] as? String })
            try manifest(version: "v2-from-configmap", marker: marker, dataDirectory: server.dataDirectory).write(toFile: path, atomically: true, encoding: .utf8)
            let reapplied = try await server.cli(["apply", "-f", path])
            // Applied together, the deployment takes the new digest in the same transaction: one rollout.
            #expect(reapplied.stdout.contains("configmap/web-config configured") && reapplied.stdout.contains("deployment/cfg configured"), "\(reapplied)")
            try await eventually(timeout: .seconds(60), "2 ready replicas of a new template hash") {
                let items = try await server.items("replicas")
                let live = items.filter { ($0["deployment"] as? String) == "cfg" }
                return live.count == 2 && live.allSatisfy {
                    $0["ready"] as? Bool == true && !oldHashes.contains((($0["spec"] as? [String: Any])?["templateHash"] as? String) ?? "")
                }
            }
            let fresh = try #require(try await ready(server).first)
            let freshAddress = try #require(fresh["address"] as? String)
            let freshColon = try #require(freshAddress.lastIndex(of: ":"))
            let freshAnswer = try await httpGet(host: String(freshAddress[..<freshColon]), port: Int(freshAddress[freshAddress.index(after: freshColon)...])!)
            #expect(try freshAnswer.jsonObject()["version"] as? String == "v2-from-configmap")
            try await eventually("the old replica's files removed") { !FileManager.default.fileExists(atPath: credsDirectory) }
        }
    }

    @Test("a replica whose ConfigMap is missing stays Pending with the reason, and starts once it exists")
    func missingConfigMap() async throws {
        try await withWeftServer { server in
            let manifest = """
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: waits
                spec:
                  template:
                    metadata:
                      labels: {app: waits}
                    spec:
                      command: ["weft-demo"]
                      env:
                        - {name: TEST_DATA_DIR, value: "\(server.dataDirectory.path)"}
                        - name: VERSION
                          valueFrom:
                            configMapKeyRef: {name: absent, key: VERSION}
                      ports: [{name: http}]
                """
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "waits.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            try await eventually("a Pending replica with the reason") {
                try await server.items("replicas").contains {
                    $0["phase"] as? String == "Pending" && (($0["status"] as? [String: Any])?["message"] as? String) == "configmap \"absent\" not found"
                }
            }
            let name = try #require(try await server.items("replicas").first?["name"] as? String)
            let described = try await server.cli(["describe", "replica", name])
            #expect(described.stdout.contains("configmap \"absent\" not found"), "\(described)")

            let configMap = try writeTemporaryFile("""
                apiVersion: weft/v1
                kind: ConfigMap
                metadata: {name: absent}
                data: {VERSION: now-present}
                """, in: server.dataDirectory, name: "absent.yaml")
            #expect(try await server.cli(["apply", "-f", configMap]).exit == .exited(0))
            try await eventually(timeout: .seconds(60), "the replica running") {
                try await server.items("replicas").contains { $0["ready"] as? Bool == true }
            }
        }
    }
}
