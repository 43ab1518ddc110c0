import Foundation
import Testing
import WeftCore
import WeftProxy

@Suite("Proxy configuration decoding and validation")
struct ConfigurationTests {
    func problems(_ json: String) -> [String] {
        let document = try! JSONValue.parse(Data(json.utf8))
        do {
            _ = try ProxyConfiguration.decode(document)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func decodesAFullListenerWithDefaultsLeftOut() throws {
        let json = """
            {"listeners": [{"name": "default/cart:http", "address": "127.10.0.3", "port": 80,
              "loadBalancer": "ringHash", "connectTimeoutMs": 250,
              "outlierDetection": {"consecutiveFailures": 3},
              "backends": [{"address": "127.0.0.1", "port": 8001}, {"address": "::1", "port": 8002, "weight": 0}]}]}
            """
        let configuration = try ProxyConfiguration.decode(try JSONValue.parse(Data(json.utf8)))
        let listener = try #require(configuration.listeners.first)
        #expect(listener.loadBalancer == .ringHash)
        #expect(listener.connectTimeoutMs == 250 && listener.idleTimeoutMs == nil)
        #expect(listener.outlierDetection?.consecutiveFailures == 3)
        #expect(listener.outlierDetection?.maxEjectedPercent == 50)
        #expect(listener.backends[1].id == "[::1]:8002")
        #expect(listener.endpoint == "127.10.0.3:80")
    }

    @Test(arguments: [
        (#"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": 80, "backends": [], "color": 1}]}"#,
         "listeners[0].color: unknown field"),
        (#"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": "80", "backends": []}]}"#,
         "listeners[0].port: must be an integer, got a string \"80\""),
        (#"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": 80}]}"#,
         "listeners[0].backends: is required"),
        (#"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": 80, "loadBalancer": "fastest", "backends": []}]}"#,
         "listeners[0].loadBalancer: must be one of"),
        (#"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": 80, "backends": [{"address": "127.0.0.1", "port": 1, "weigth": 5}]}]}"#,
         "listeners[0].backends[0].weigth: unknown field"),
    ])
    func reportsDecodingErrorsWithPaths(json: String, expected: String) {
        let found = problems(json)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix(expected) == true, "\(found)")
    }

    @Test func reportsEveryRuleBreak() {
        let json = """
            {"listeners": [
              {"name": "", "address": "localhost", "port": 0, "connectTimeoutMs": 0, "idleTimeoutMs": -1,
               "maxConnections": 0, "connectAttempts": 0, "drainTimeoutMs": 0,
               "outlierDetection": {"consecutiveFailures": -1, "baseEjectionSeconds": 0, "maxEjectedPercent": 101},
               "backends": [{"address": "127.0.0.1", "port": 8001}, {"address": "10.0.0.256", "port": 70000, "weight": -1},
                            {"address": "127.0.0.1", "port": 8001}]},
              {"name": "b", "address": "127.0.0.2", "port": 80, "backends": []},
              {"name": "b", "address": "127.0.0.2", "port": 80, "backends": []}
            ]}
            """
        let found = Set(problems(json))
        let expected: Set<String> = [
            "listeners[0].name: must not be empty",
            "listeners[0].address: must be an IPv4 or IPv6 address, got \"localhost\"",
            "listeners[0].port: must be between 1 and 65535",
            "listeners[0].backends[1].address: must be an IPv4 or IPv6 address, got \"10.0.0.256\"",
            "listeners[0].backends[1].port: must be between 1 and 65535",
            "listeners[0].backends[1].weight: must be 0 or more",
            "listeners[0].backends[2]: duplicate backend 127.0.0.1:8001 (also backends[0])",
            "listeners[0].connectTimeoutMs: must be greater than 0",
            "listeners[0].idleTimeoutMs: must be greater than 0",
            "listeners[0].maxConnections: must be greater than 0",
            "listeners[0].drainTimeoutMs: must be greater than 0",
            "listeners[0].connectAttempts: must be at least 1",
            "listeners[0].outlierDetection.consecutiveFailures: must be 0 (off) or more",
            "listeners[0].outlierDetection.baseEjectionSeconds: must be a number greater than 0",
            "listeners[0].outlierDetection.maxEjectedPercent: must be between 0 and 100",
            "listeners[2].name: duplicate listener name \"b\" (also listeners[1])",
            "listeners[2].port: 127.0.0.2:80 is already used by listeners[1]; each listener needs its own address and port",
        ]
        #expect(found == expected, "missing: \(expected.subtracting(found)), unexpected: \(found.subtracting(expected))")
    }

    @Test func emptyConfigurationIsValid() throws {
        #expect(problems(#"{"listeners": []}"#).isEmpty)
    }
}

@Suite("HTTP listener configuration")
struct HTTPConfigurationTests {
    func problems(_ listener: String) -> [String] {
        let json = #"{"listeners": [{"name": "a", "address": "127.0.0.1", "port": 80, "backends": [], "# + listener + "}]}"
        do {
            _ = try ProxyConfiguration.decode(try JSONValue.parse(Data(json.utf8)))
            return []
        } catch {
            return (error as? ProxyConfigurationError)?.problems.map(\.description) ?? ["\(error)"]
        }
    }

    @Test func acceptsAFullHTTPListener() {
        #expect(problems(#""protocol": "http", "service": "default/web", "http": {"timeoutMs": 500, "retries": {"attempts": 1, "budgetPercent": 10, "minRetriesPerSecond": 2}}, "split": [{"revision": "a1", "weight": 90}, {"revision": "b2", "weight": 10}]"#) == [])
        // A split revision no backend has yet is allowed: a rollout adds its backends later.
        #expect(problems(#""split": [{"revision": "next", "weight": 100}]"#) == [])
    }

    @Test(arguments: [
        (#""split": [{"revision": "a", "weight": 101}]"#, "listeners[0].split[0].weight: must be between 0 and 100"),
        (#""split": [{"revision": "a", "weight": -1}]"#, "listeners[0].split[0].weight: must be between 0 and 100"),
        (#""split": [{"revision": "a", "weight": 50}, {"revision": "a", "weight": 50}]"#, "listeners[0].split[1].revision: duplicate revision \"a\" (also split[0])"),
        (#""split": [{"revision": "a", "weight": 0}]"#, "listeners[0].split: at least one revision needs a weight greater than 0"),
        (#""http": {"timeoutMs": 100}"#, "listeners[0].http: applies only to HTTP listeners; set protocol: http or remove it"),
        (#""protocol": "http", "http": {"timeoutMs": 0}"#, "listeners[0].http.timeoutMs: must be greater than 0"),
        (#""protocol": "http", "http": {"retries": {"budgetPercent": 150}}"#, "listeners[0].http.retries.budgetPercent: must be between 0 and 100"),
        (#""protocol": "http", "http": {"retries": {"attempts": -1}}"#, "listeners[0].http.retries.attempts: must be between 0 (no retries) and 10"),
        (#""service": "web""#, "listeners[0].service: must be namespace/name, got \"web\""),
        (#""protocol": "grpc""#, "listeners[0].protocol"),
    ])
    func reportsProblemsWithTheirFieldPath(listener: String, expected: String) {
        let found = problems(listener)
        #expect(found.contains { $0.hasPrefix(expected) }, "\(found)")
    }
}
