import Foundation
import NIOCore
import Testing
import WeftCore
@testable import WeftClient

/// Unit tests of WeftClient's pure parts: manifests, config files, output formatting, watch lines.
@Suite("WeftClient")
struct ClientTests {
    // MARK: - YAML → JSONValue

    @Test("YAML scalars get the types Yams resolves; timestamps stay strings")
    func scalarTyping() throws {
        let docs = try YAMLText.documents("""
            int: 42
            negative: -7
            hex: 0x1F
            float: 2.5
            exponent: 1e3
            affirmative: yes
            switch: off
            word: hello
            quoted: "80"
            single: 'true'
            nothing: null
            tilde: ~
            empty:
            time: 2024-01-02T03:04:05Z
            date: 2024-01-02
            version: 1.10
            list: [1, "2", x]
            """)
        let doc = try #require(docs.first ?? nil)
        #expect(doc["int"] == .int(42))
        #expect(doc["negative"] == .int(-7))
        #expect(doc["hex"] == .int(31))
        #expect(doc["float"] == .double(2.5))
        #expect(doc["exponent"] == .double(1000))
        #expect(doc["affirmative"] == .bool(true))
        #expect(doc["switch"] == .bool(false))
        #expect(doc["word"] == .string("hello"))
        #expect(doc["quoted"] == .string("80"))
        #expect(doc["single"] == .string("true"))
        #expect(doc["nothing"] == .null)
        #expect(doc["tilde"] == .null)
        #expect(doc["empty"] == .null)
        #expect(doc["time"] == .string("2024-01-02T03:04:05Z"))
        #expect(doc["date"] == .string("2024-01-02"))
        #expect(doc["version"] == .double(1.1))
        #expect(doc["list"] == .array([.int(1), .string("2"), .string("x")]))
    }

    @Test("several documents, empty ones reported as nil; anchors and merge keys resolved")
    func multiDocument() throws {
        let docs = try YAMLText.documents("""
            ---
            base: &base
              a: 1
            ---
            ---
            # only a comment
            ---
            merged:
              <<: {a: 1, b: 2}
              b: 3
            copy: *x
            """.replacingOccurrences(of: "*x", with: "[]"))
        #expect(docs.count == 4)
        #expect(docs[0]?["base"] == .object(["a": .int(1)]))
        #expect(docs[1] == nil)
        #expect(docs[2] == nil)
        #expect(docs[3]?["merged"] == .object(["a": .int(1), "b": .int(3)]))
    }

    @Test("a non-string key and a syntax error are reported with their line")
    func yamlErrors() {
        #expect {
            _ = try YAMLText.documents("a: 1\nports:\n  80: http\n")
        } throws: { error in
            let failure = error as? YAMLText.Failure
            return failure?.line == 3 && failure?.message.contains("80") == true
        }
        #expect {
            _ = try YAMLText.documents("a: 1\nb: [1, 2\nc: 3\n")
        } throws: { error in
            (error as? YAMLText.Failure)?.line != nil
        }
        #expect {
            _ = try YAMLText.documents("labels:\n  on: blue\n")
        } throws: { error in
            (error as? YAMLText.Failure)?.line == 2
        }
        #expect {
            _ = try YAMLText.documents("a: 1\na: 2\n")
        } throws: { error in
            (error as? YAMLText.Failure)?.message.contains("duplicate") == true
        }
    }

    @Test("manifest files: a directory's yaml/yml/json files in name order, indices within each file")
    func manifestDirectory() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "kind: Service\nmetadata: {name: b}\n---\n---\nkind: Deployment\nmetadata: {name: c}\n".write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        try #"{"kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 2}}"#.write(toFile: dir + "/a.json", atomically: true, encoding: .utf8)
        try "kind: Service\nmetadata: {name: d}\n".write(toFile: dir + "/c.yml", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        let docs = try ManifestFiles.load(path: dir)
        #expect(docs.map(\.objectLabel) == ["Deployment/a", "Service/b", "Deployment/c", "Service/d"])
        #expect(docs.map(\.index) == [0, 0, 2, 0])
        #expect(docs[0].value["spec"]?["replicas"] == .int(2))
        #expect(docs[1].file.hasSuffix("/b.yaml"))

        try "a: [1\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        #expect {
            _ = try ManifestFiles.load(path: dir + "/bad.yaml")
        } throws: { error in
            "\(error)".contains("bad.yaml:") && "\(error)".contains("invalid YAML")
        }
        #expect(throws: ClientError.self) { _ = try ManifestFiles.load(path: dir + "/missing.yaml") }
    }

    // MARK: - Config

    @Test("client config: YAML round trip, mode 0600, atomic replace, clear error for a missing file")
    func configRoundTrip() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/nested/admin.yaml"
        let config = ClientConfig(server: "https://127.0.0.1:7443", token: "s3cret-token", certificateAuthority: Self.caPEM)
        try config.write(to: path)
        #expect(try ClientConfig.load(path: path) == config)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        var changed = config
        changed.token = "other"
        try changed.write(to: path)
        #expect(try ClientConfig.load(path: path).token == "other")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/nested") == ["admin.yaml"])

        #expect {
            _ = try ClientConfig.load(path: dir + "/none.yaml")
        } throws: { error in
            "\(error)".contains("none.yaml") && "\(error)".contains("weft server")
        }
        try "server: https://x\n".write(toFile: dir + "/partial.yaml", atomically: true, encoding: .utf8)
        #expect {
            _ = try ClientConfig.load(path: dir + "/partial.yaml")
        } throws: { error in
            "\(error)".contains("partial.yaml") && "\(error)".contains("token")
        }
    }

    @Test("config path: --config, then $WEFT_CONFIG, then ~/.weft/admin.yaml")
    func configPath() {
        #expect(ClientConfig.defaultPath(explicit: "/a.yaml", environment: ["WEFT_CONFIG": "/b.yaml", "HOME": "/home/u"]) == "/a.yaml")
        #expect(ClientConfig.defaultPath(explicit: nil, environment: ["WEFT_CONFIG": "/b.yaml", "HOME": "/home/u"]) == "/b.yaml")
        #expect(ClientConfig.defaultPath(explicit: nil, environment: ["HOME": "/home/u"]) == "/home/u/.weft/admin.yaml")
    }

    // MARK: - Formatting

    @Test("age: seconds, minutes, hours, days", arguments: [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"), (86400, "1d"), (900000, "10d"), (-5, "0s")])
    func age(seconds: Int, text: String) {
        #expect(Age.format(seconds: seconds) == text)
    }

    @Test("age from RFC 3339 timestamps, with or without fractions")
    func ageSince() throws {
        let now = try #require(Age.parse("2024-05-01T12:00:00Z"))
        #expect(Age.since("2024-05-01T11:57:00Z", now: now) == "3m")
        #expect(Age.since("2024-05-01T11:59:55.250Z", now: now) == "4s")
        #expect(Age.since("2024-04-27T12:00:00+00:00", now: now) == "4d")
        #expect(Age.since(nil, now: now) == "<unknown>")
        #expect(Age.since("yesterday", now: now) == "<unknown>")
    }

    @Test("table: aligned columns three spaces apart, no trailing spaces")
    func table() {
        let table = Table(headers: ["NAME", "READY", "AGE"], rows: [["cart", "3/3", "5m"], ["checkout-long", "0/1", "2h"]])
        #expect(table.render() == """
            NAME            READY   AGE
            cart            3/3     5m
            checkout-long   0/1     2h

            """)
    }

    @Test("replica rows and flat fields")
    func replicaView() throws {
        let object = try JSONValue.parse(Data(Self.replicaJSON.utf8))
        let now = try #require(Age.parse("2024-05-01T12:02:00Z"))
        #expect(ResourceView.headers(.replica, allNamespaces: true) == ["NAMESPACE", "NAME", "PHASE", "READY", "RESTARTS", "ADDRESS", "NODE", "AGE"])
        #expect(ResourceView.row(.replica, object, allNamespaces: false, now: now) == ["web-abc-x1", "Ready", "true", "2", "127.0.0.1:40001", "node-1", "2m"])
        let flat = ResourceView.flattened(.replica, object)
        #expect(flat["name"] == .string("web-abc-x1"))
        #expect(flat["namespace"] == .string("shop"))
        #expect(flat["deployment"] == .string("web"))
        #expect(flat["node"] == .string("node-1"))
        #expect(flat["phase"] == .string("Ready"))
        #expect(flat["ready"] == .bool(true))
        #expect(flat["address"] == .string("127.0.0.1:40001"))
        #expect(flat["restarts"] == .int(2))
        #expect(flat["pid"] == .int(4242))
        #expect(flat["status"]?["phase"] == .string("Ready"))

        // Before the agent reports: Pending, not ready, no address; all fields still present.
        guard case .object(var members) = object else { Issue.record("not an object"); return }
        members["status"] = nil
        let pending = ResourceView.flatFields(.replica, .object(members))
        #expect(pending["phase"] == .string("Pending"))
        #expect(pending["ready"] == .bool(false))
        #expect(pending["address"] == .null)
        #expect(pending["restarts"] == .int(0))
        #expect(pending["lastExitReason"] == .null)

        // An OOM kill (oci runtime) shows next to the restart count, as kubectl shows it.
        guard case .object(var status) = members["status"] ?? object["status"] else { Issue.record("no status"); return }
        status["lastExitReason"] = .string("OOMKilled")
        members["status"] = .object(status)
        #expect(ResourceView.row(.replica, .object(members), allNamespaces: false, now: now)[3] == "2 (OOMKilled)")
        #expect(ResourceView.flattened(.replica, .object(members))["lastExitReason"] == .string("OOMKilled"))
    }

    @Test("deployment, service and node rows")
    func otherRows() throws {
        let now = try #require(Age.parse("2024-05-01T14:00:00Z"))
        let deployment = try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Deployment","metadata":{"name":"cart","namespace":"shop","creationTimestamp":"2024-05-01T12:00:00Z"},
             "spec":{"replicas":3,"template":{"spec":{"command":["x"]}}},"status":{"replicas":3,"updatedReplicas":3,"readyReplicas":2}}
            """.utf8))
        #expect(ResourceView.row(.deployment, deployment, allNamespaces: true, now: now) == ["shop", "cart", "2/3", "3", "2h"])
        let service = try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Service","metadata":{"name":"cart","creationTimestamp":"2024-05-01T13:59:00Z"},
             "spec":{"selector":{"app":"cart","tier":"web"},"ports":[{"port":80,"targetPort":"http"},{"port":53,"protocol":"UDP"}]}}
            """.utf8))
        #expect(ResourceView.row(.service, service, allNamespaces: false, now: now) == ["cart", "VIP", "<none>", "80:http/TCP,53/UDP", "app=cart,tier=web", "1m"])
        let node = try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"Node","metadata":{"name":"n1","creationTimestamp":"2024-04-30T14:00:00Z"},
             "spec":{"unschedulable":true},
             "status":{"ready":true,"addresses":["127.0.0.1"],"lastHeartbeat":"2024-05-01T13:59:57.250Z","capacity":{"cpu":"4","memory":"8Gi"}}}
            """.utf8))
        #expect(ResourceView.headers(.node, allNamespaces: true) == ["NAME", "STATUS", "CAPACITY", "ALLOCATED", "REPLICAS", "HEARTBEAT", "ADDRESS", "AGE"])
        let usage = ["n1": NodeUsage(cpuMillicores: 1500, memoryBytes: 256 << 20, replicas: 3)]
        #expect(ResourceView.row(.node, node, allNamespaces: true, now: now, nodeUsage: usage)
            == ["n1", "Ready,SchedulingDisabled", "cpu=4,memory=8Gi", "cpu=1500m,memory=256Mi", "3", "2s ago", "127.0.0.1", "1d"])
        #expect(ResourceView.row(.node, node, allNamespaces: true, now: now)[3...4] == ["cpu=0,memory=0", "0"])
        #expect(ResourceView.flatFields(.node, node)["namespace"] == .string(""))
    }

    @Test("authorization policy and peer authentication rows, flat fields and rule text")
    func authorizationRows() throws {
        let now = try #require(Age.parse("2024-05-01T14:00:00Z"))
        let policy = try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"AuthorizationPolicy","metadata":{"name":"cart-callers","namespace":"shop","creationTimestamp":"2024-05-01T13:55:00Z"},
             "spec":{"service":"cart","allow":[{"serviceAccounts":["frontend","payments/worker"]},{"namespaces":["ops"]},{"serviceAccounts":["batch"],"namespaces":["jobs","ci"]},{}]}}
            """.utf8))
        #expect(ResourceView.headers(.authorizationPolicy, allNamespaces: false) == ["NAME", "SERVICE", "RULES", "AGE"])
        #expect(ResourceView.row(.authorizationPolicy, policy, allNamespaces: true, now: now) == ["shop", "cart-callers", "cart", "4", "5m"])
        #expect(ResourceView.flatFields(.authorizationPolicy, policy)["service"] == .string("cart"))
        #expect(ResourceView.flatFields(.authorizationPolicy, policy)["rules"] == .int(4))
        let rules = try #require(ResourceView.decode(AuthorizationPolicy.self, policy)).spec.allow
        #expect(rules.map { ResourceView.ruleText($0, namespace: "shop") } == [
            "service accounts shop/frontend, payments/worker",
            "any service account in namespace ops",
            "service account batch in namespaces jobs, ci",
            "any mesh identity",
        ])
        let denyAll = try JSONValue.parse(Data(#"{"apiVersion":"weft/v1","kind":"AuthorizationPolicy","metadata":{"name":"lockdown"},"spec":{"service":"cart","allow":[]}}"#.utf8))
        #expect(ResourceView.row(.authorizationPolicy, denyAll, allNamespaces: false, now: now) == ["lockdown", "cart", "0 (deny all)", "<unknown>"])

        let peer = try JSONValue.parse(Data("""
            {"apiVersion":"weft/v1","kind":"PeerAuthentication","metadata":{"name":"mtls","creationTimestamp":"2024-05-01T12:00:00Z"},"spec":{"mtls":{"mode":"STRICT"}}}
            """.utf8))
        #expect(ResourceView.headers(.peerAuthentication, allNamespaces: true) == ["NAMESPACE", "NAME", "MODE", "AGE"])
        #expect(ResourceView.row(.peerAuthentication, peer, allNamespaces: false, now: now) == ["mtls", "STRICT", "2h"])
        #expect(ResourceView.flatFields(.peerAuthentication, peer)["mode"] == .string("STRICT"))
    }

    @Test("node usage counts requests of every bound replica (terminating ones still hold theirs) and live replicas")
    func nodeUsage() throws {
        func replica(_ name: String, node: String, cpu: String, terminating: Bool = false) -> Replica {
            var metadata = ObjectMeta(name: name, namespace: "default")
            if terminating { metadata.deletionTimestamp = "2024-05-01T12:00:00Z" }
            return Replica(metadata: metadata, spec: ReplicaSpec(deployment: "web", node: node, templateHash: "h",
                                                                 template: WorkloadSpec(command: ["x"], resources: ResourceRequirements(requests: ResourceList(cpu: cpu, memory: "64Mi")))))
        }
        let nodes = [Node(metadata: ObjectMeta(name: "n1")), Node(metadata: ObjectMeta(name: "n2"))]
        let usage = NodeUsage.of(nodes: nodes, replicas: [replica("a", node: "n1", cpu: "500m"), replica("b", node: "n1", cpu: "1", terminating: true),
                                                           replica("c", node: "", cpu: "2")])
        #expect(usage["n1"] == NodeUsage(cpuMillicores: 1500, memoryBytes: 128 << 20, replicas: 1))
        #expect(usage["n2"] == NodeUsage())
        #expect(usage["n1"]?.allocatedText == "cpu=1500m,memory=128Mi")
        #expect(NodeUsage.memoryText(3 << 30) == "3Gi" && NodeUsage.memoryText(1000) == "1000" && NodeUsage.cpuText(2000) == "2")
    }

    @Test("YAML output quotes strings that would read back as other types, and round-trips")
    func yamlOutput() throws {
        let value = JSONValue.object([
            "kind": .string("Deployment"), "port": .string("80"), "flag": .string("yes"), "empty": .string(""),
            "n": .int(3), "x": .double(1.5), "b": .bool(false), "none": .null, "pem": .string("line1\nline2\n"),
            "list": .array([.string("a"), .int(1)]), "80": .string("key that looks like a number"),
        ])
        let text = try OutputText.yaml(value)
        #expect(text.hasPrefix("\"80\": key that looks like a number\n") || text.hasPrefix("'80': key that looks like a number\n"))
        #expect(try YAMLText.documents(text) == [value])
    }

    // MARK: - Watch lines and errors

    @Test("NDJSON lines are split across chunk boundaries")
    func lineSplitting() throws {
        var splitter = LineSplitter()
        #expect(try splitter.append(ByteBuffer(string: "{\"a\":1}\n{\"b\"")) == [Array("{\"a\":1}".utf8)])
        #expect(try splitter.append(ByteBuffer(string: ":2}")) == [])
        #expect(try splitter.append(ByteBuffer(string: "\n\n{\"c\":3}\n")) == [Array("{\"b\":2}".utf8), [], Array("{\"c\":3}".utf8)])
        #expect(try splitter.append(ByteBuffer(string: "{\"d\":4}")) == [])
        #expect(splitter.finish() == Array("{\"d\":4}".utf8))
        #expect(splitter.finish() == nil)
    }

    @Test("watch events: typed objects, bookmarks, and ERROR 410 as APIError")
    func watchEvents() throws {
        let added = try #require(try APIClient.watchEvent(Array(#"{"type":"ADDED","object":\#(Self.replicaJSON)}"#.utf8)))
        guard case .added(let replica)? = try APIClient.typed(added, as: Replica.self) else {
            Issue.record("expected ADDED")
            return
        }
        #expect(replica.name == "web-abc-x1")
        let bookmark = try #require(try APIClient.watchEvent(Array(#"{"object":{"metadata":{"resourceVersion":"42"}},"type":"BOOKMARK"}"#.utf8)))
        guard case .bookmark("42")? = try APIClient.typed(bookmark, as: Replica.self) else {
            Issue.record("expected a bookmark at 42")
            return
        }
        #expect(try APIClient.watchEvent(Array("  ".utf8)) == nil)
        #expect {
            _ = try APIClient.watchEvent(Array(#"{"type":"ERROR","object":{"code":410,"message":"too old"}}"#.utf8))
        } throws: { error in
            (error as? APIError)?.status == 410 && (error as? APIError)?.message == "too old"
        }
    }

    @Test("API error bodies with details; non-JSON bodies still give a message")
    func apiErrors() {
        let body = #"{"error":{"code":422,"message":"1 invalid field","details":[{"document":1,"object":"Deployment/cart","path":"spec.replicas","message":"must be between 0 and 1000"}]}}"#
        let error = APIError.from(status: 422, reason: "Unprocessable Entity", body: Array(body.utf8))
        #expect(error.status == 422)
        #expect(error.message == "1 invalid field")
        #expect(error.details == [APIError.Detail(document: 1, object: "Deployment/cart", path: "spec.replicas", message: "must be between 0 and 1000")])
        let plain = APIError.from(status: 502, reason: "Bad Gateway", body: Array("upstream down".utf8))
        #expect(plain.message.contains("502") && plain.message.contains("upstream down"))
    }

    @Test("paths: namespaced, all namespaces, cluster-scoped")
    func paths() {
        #expect(APIClient.collectionPath(.deployment, namespace: "shop") == "/api/v1/namespaces/shop/deployments")
        #expect(APIClient.collectionPath(.replica, namespace: nil) == "/api/v1/replicas")
        #expect(APIClient.collectionPath(.node, namespace: "shop") == "/api/v1/nodes")
        #expect(APIClient.objectPath(.service, namespace: nil, name: "cart") == "/api/v1/namespaces/default/services/cart")
        #expect(APIClient.objectPath(.node, namespace: nil, name: "n1") == "/api/v1/nodes/n1")
    }

    @Test("a server that is not running gives one sentence naming it")
    func unreachable() async throws {
        let port = try closedPort()
        let client = try APIClient(config: ClientConfig(server: "https://127.0.0.1:\(port)", token: "t", certificateAuthority: Self.caPEM))
        do {
            _ = try await client.list(.deployment, namespace: nil)
            Issue.record("expected a failure")
        } catch {
            let text = "\(error)"
            #expect(text.contains("https://127.0.0.1:\(port) is not reachable"), "\(text)")
            #expect(text.contains("weft server"), "\(text)")
        }
        try await client.shutdown()
    }

    @Test("a config without an https URL or a PEM CA is refused")
    func badConfig() {
        #expect(throws: ClientError.self) { _ = try APIClient(config: ClientConfig(server: "http://127.0.0.1:1", token: "t", certificateAuthority: Self.caPEM)) }
        #expect(throws: ClientError.self) { _ = try APIClient(config: ClientConfig(server: "https://127.0.0.1:1", token: "t", certificateAuthority: "nope")) }
    }

    // MARK: - Command-line errors

    @Test("a bad argument or flag is one `error:` line on stderr naming the flag, without the usage, and a non-zero exit",
          arguments: [
              (["scale", "deployment", "web", "--replicas=-1"], "--replicas: -1 is negative; give 0 or more"),
              (["scale", "deployment", "web"], "--replicas"),
              (["get", "deployments", "--bogus"], "--bogus"),
              (["get", "deployments", "-o", "xml"], "xml"),
              (["get", "deployments", "-n", "shop", "-A"], "-n/--namespace and -A/--all-namespaces exclude each other"),
              (["apply"], "give the manifests with -f FILE or -f DIR"),
              (["delete", "deployment"], "give KIND NAME"),
              (["delete", "deployment", "web", "-f", "x.yaml"], "not both"),
              (["logs", "web-1", "--tail=-3"], "--tail: -3 is negative; give 0 or more"),
              (["server", "--api-listen", "nowhere"], "--api-listen: \"nowhere\" is not HOST:PORT"),
              (["server", "--api-listen", "127.0.0.1:0", "--node-name", "n1", "--dns-upstream", "none", "--node-grace", "0"],
               "--node-grace: 0.0 s is outside 1 s to 1 hour"),
              (["server", "--api-listen", "127.0.0.1:0", "--node-name", "Bad_Name"], "--node-name:"),
          ])
    func usageErrors(arguments: [String], fragment: String) async throws {
        let dataDirectory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        // A server that passed validation would create its data directory: the check below sees it did not.
        let data = dataDirectory + "/data"
        let child = ChildProcess(executable: try WeftBuild.executable("weft"),
                                 arguments: arguments + (arguments[0] == "server" ? ["--data-dir", data] : ["--config", dataDirectory + "/missing.yaml"]))
        try child.start()
        let exit = try await child.waitForExit(timeout: .seconds(30))
        let stderr = child.lines(.stderr).filter { !$0.isEmpty }
        #expect(exit != .exited(0), "\(child.transcript)")
        #expect(stderr.count == 1, "\(child.transcript)")
        #expect(stderr.first?.hasPrefix("error: ") == true, "\(child.transcript)")
        #expect(stderr.first?.contains(fragment) == true, "\(child.transcript)")
        #expect(stderr.first?.hasSuffix("(see `weft \(arguments[0]) --help`)") == true, "\(child.transcript)")
        #expect(child.lines(.stdout).isEmpty, "\(child.transcript)")
        #expect(!FileManager.default.fileExists(atPath: data))
    }

    // MARK: - Fixtures

    static let replicaJSON = """
        {"apiVersion":"weft/v1","kind":"Replica",
         "metadata":{"name":"web-abc-x1","namespace":"shop","creationTimestamp":"2024-05-01T12:00:00Z","resourceVersion":"7"},
         "spec":{"deployment":"web","node":"node-1","templateHash":"abc",
                 "template":{"command":["weft-demo"],"ports":[{"name":"http"},{"name":"admin"}]}},
         "status":{"phase":"Ready","ready":true,"address":"127.0.0.1","ports":{"admin":40002,"http":40001},"restarts":2,"pid":4242}}
        """

    /// A self-signed test CA (the tests never complete a handshake with it).
    static let caPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBhTCCASugAwIBAgIUUcJ2pYmboU7CsOZHSFm8muNZJhcwCgYIKoZIzj0EAwIw
        FzEVMBMGA1UEAwwMd2VmdCB0ZXN0IENBMCAXDTI2MTEyMzE0MTIxN1oYDzIxMjYx
        MDMwMTQxMjE3WjAXMRUwEwYDVQQDDAx3ZWZ0IHRlc3QgQ0EwWTATBgcqhkjOPQIB
        BggqhkjOPQMBBwNCAAQSgRnHjnEVc/rDcb+xc4dsuMfPUulFsG/5NZVLYgxmIJ2Z
        2i2Lx1lzP0Sg4qILHsq+fFicTLajP+NzMNHuohTSo1MwUTAdBgNVHQ4EFgQUWQYZ
        BBj+J0zRvhJeMIKoyITDsvowHwYDVR0jBBgwFoAUWQYZBBj+J0zRvhJeMIKoyITD
        svowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAusLhkLGK02bC
        YIcczC4QSPmblSW0xezdr1vw1J5iT/MCIHY4Awpr76Z9bYlc1xPQF0pyBdSnHYfi
        lz6IMDZtnmmX
        -----END CERTIFICATE-----

        """

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weft-client-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A loopback port with nothing listening: bound, then closed.
    private func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(fd, raw, length) == 0, getsockname(fd, raw, &length) == 0 else {
                    throw ClientError("cannot bind a test socket")
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
