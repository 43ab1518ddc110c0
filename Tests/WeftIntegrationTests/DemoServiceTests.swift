import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import weft_demo

/// weft-demo as a child process, spoken to over HTTP on 127.0.0.1.
@Suite("weft-demo end to end", .timeLimit(.minutes(2)))
struct DemoServiceTests {
    @Test func rootAnswersWithIdentityJSON() async throws {
        let environment = [
            "VERSION": "v7", "SERVICE_NAME": "checkout", "WEFT_REPLICA_NAME": "checkout-1", "WEFT_REPLICA_IP": "10.1.2.3",
        ]
        try await withWeftDemo(environment: environment) { demo in
            let response = try await httpGet(port: demo.port)
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            let json = try response.jsonObject()
            #expect(json["service"] as? String == "checkout")
            #expect(json["version"] as? String == "v7")
            #expect(json["replica"] as? String == "checkout-1")
            #expect(json["address"] as? String == "10.1.2.3:\(demo.port)")
            #expect(json["upstream"] == nil)
        }
    }

    @Test func defaultsNameTheServiceAfterTheDeployment() async throws {
        try await withWeftDemo(environment: ["WEFT_DEPLOYMENT": "cart"]) { demo in
            let json = try await httpGet(port: demo.port).jsonObject()
            #expect(json["service"] as? String == "cart")
            #expect(json["version"] as? String == "v1")
            #expect(json["address"] as? String == "127.0.0.1:\(demo.port)")
            #expect((json["replica"] as? String)?.isEmpty == false)
        }
    }

    @Test func healthzAnswersOK() async throws {
        try await withWeftDemo { demo in
            let response = try await httpGet(port: demo.port, path: "/healthz")
            #expect(response.status == 200)
            #expect(response.text == "ok")
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
        }
    }

    @Test func unknownPathIsA404WithJSON() async throws {
        try await withWeftDemo { demo in
            let response = try await httpGet(port: demo.port, path: "/nope?x=1")
            #expect(response.status == 404)
            #expect(try response.jsonObject()["path"] as? String == "/nope")
        }
    }

    @Test func failRateOneAnswers500() async throws {
        try await withWeftDemo(environment: ["FAIL_RATE": "1", "VERSION": "v2"]) { demo in
            for _ in 0..<3 {
                let response = try await httpGet(port: demo.port)
                #expect(response.status == 500)
                #expect(try response.jsonObject()["version"] as? String == "v2")
            }
            #expect(try await httpGet(port: demo.port, path: "/healthz").status == 200)
        }
    }

    @Test func delayIsAddedToRoot() async throws {
        try await withWeftDemo(environment: ["DELAY_MS": "300"]) { demo in
            let start = ContinuousClock.now
            let response = try await httpGet(port: demo.port)
            #expect(response.status == 200)
            #expect(ContinuousClock.now - start >= .milliseconds(300))
        }
    }

    @Test func chainedDemoEmbedsTheUpstreamAnswer() async throws {
        try await withWeftDemo(environment: ["SERVICE_NAME": "backend", "VERSION": "v9"]) { backend in
            try await withWeftDemo(environment: ["SERVICE_NAME": "frontend", "UPSTREAM": backend.address]) { frontend in
                let response = try await httpGet(port: frontend.port)
                #expect(response.status == 200)
                let json = try response.jsonObject()
                #expect(json["service"] as? String == "frontend")
                let upstream = try #require(json["upstream"] as? [String: Any], "\(response)")
                #expect(upstream["service"] as? String == "backend")
                #expect(upstream["version"] as? String == "v9")
                #expect(upstream["address"] as? String == "127.0.0.1:\(backend.port)")
            }
        }
    }

    @Test func failingUpstreamIsA502WithTheStatus() async throws {
        try await withWeftDemo(environment: ["FAIL_RATE": "1"]) { backend in
            try await withWeftDemo(environment: ["UPSTREAM": backend.address]) { frontend in
                let response = try await httpGet(port: frontend.port)
                #expect(response.status == 502)
                let upstream = try #require(try response.jsonObject()["upstream"] as? [String: Any], "\(response)")
                #expect(upstream["status"] as? Int == 500)
                #expect(upstream["error"] is String)
            }
        }
    }

    @Test func closedUpstreamPortIsA502WithAnErrorObject() async throws {
        let closedPort = try freeLoopbackPort()
        try await withWeftDemo(environment: ["UPSTREAM": "127.0.0.1:\(closedPort)"]) { demo in
            let response = try await httpGet(port: demo.port)
            #expect(response.status == 502)
            let json = try response.jsonObject()
            #expect(json["service"] as? String == "weft-demo")
            let upstream = try #require(json["upstream"] as? [String: Any], "\(response)")
            let error = try #require(upstream["error"] as? String)
            #expect(error.localizedCaseInsensitiveContains("refused"), "\(error)")
            #expect(upstream["address"] as? String == "127.0.0.1:\(closedPort)")
        }
    }

    @Test(arguments: [
        ("FAIL_RATE", "abc"), ("FAIL_RATE", "1.5"), ("PORT", "99999"), ("PORT", "http"),
        ("DELAY_MS", "-5"), ("UPSTREAM", "no-port"), ("BIND", "example.com"),
    ])
    func badEnvironmentExitsWithStatus2(variable: String, value: String) async throws {
        var environment = ProcessInfo.processInfo.environment
        for name in weftDemoVariables {
            environment[name] = nil
        }
        environment["PORT"] = String(try freeLoopbackPort())
        environment["BIND"] = "127.0.0.1"
        environment[variable] = value
        try await withChildProcess(try WeftBuild.executable("weft-demo"), environment: environment, inheritEnvironment: false) { child in
            let exit = try await child.waitForExit()
            #expect(exit == .exited(2), "\(child.transcript)")
            let stderr = child.lines(.stderr)
            #expect(stderr.count == 1, "\(stderr)")
            #expect(stderr.first?.contains("\(variable)=\"\(value)\"") == true, "\(stderr)")
            #expect(child.lines(.stdout).isEmpty)
        }
    }

    @Test func sigtermExitsZeroAfterFinishingInFlightRequests() async throws {
        try await withWeftDemo(environment: ["DELAY_MS": "500"]) { demo in
            // Pipelined in one write: once the /healthz answer is back, the server has read the delayed
            // `GET /` too, so the SIGTERM lands while that request is in flight, whatever the machine's load.
            let process = demo.process
            let (health, response) = try await offThePool {
                let connection = try BlockingHTTPConnection(host: "127.0.0.1", port: demo.port)
                try connection.write(
                    "GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\nGET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
                )
                let health = try connection.readResponse()
                process.send(SIGTERM)
                return (health, try connection.readResponse())
            }
            #expect(health.status == 200, "\(health)")
            #expect(response.status == 200, "\(response)")
            #expect(try response.jsonObject()["service"] as? String == "weft-demo")
            #expect(try await demo.process.waitForExit(timeout: .seconds(5)) == .exited(0))
        }
    }

    @Test func sigintWhileIdleExitsZero() async throws {
        try await withWeftDemo { demo in
            let response = try await httpGet(port: demo.port)
            #expect(response.status == 200)
            demo.process.send(SIGINT)
            let exit = try await demo.process.waitForExit(timeout: .seconds(5))
            #expect(exit == .exited(0))
        }
    }
}

/// `DemoConfiguration.parse` is pure: tested without a process.
@Suite struct DemoConfigurationTests {
    @Test func defaults() throws {
        let configuration = try DemoConfiguration.parse(environment: [:], hostname: "node-a")
        #expect(configuration.port == 8080)
        #expect(configuration.bindHost == "0.0.0.0")
        #expect(configuration.version == "v1")
        #expect(configuration.failRate == 0)
        #expect(configuration.delayMilliseconds == 0)
        #expect(configuration.upstream == nil)
        #expect(configuration.serviceName == "weft-demo")
        #expect(configuration.replicaName == "node-a")
        let underWeft = try DemoConfiguration.parse(environment: ["WEFT_REPLICA_IP": "127.0.0.7"], hostname: "node-a")
        #expect(underWeft.bindHost == "127.0.0.7")
        #expect(configuration.replicaAddress(port: 8080) == "127.0.0.1:8080")
    }

    @Test func readsEveryVariable() throws {
        let configuration = try DemoConfiguration.parse(environment: [
            "PORT": "9000", "BIND": "::1", "VERSION": "v3", "FAIL_RATE": "0.25", "DELAY_MS": "40",
            "UPSTREAM": "backend.weft:8080", "WEFT_DEPLOYMENT": "shop", "WEFT_REPLICA_NAME": "shop-2",
            "WEFT_REPLICA_IP": "fd00::7",
        ], hostname: nil)
        #expect(configuration.port == 9000)
        #expect(configuration.bindHost == "::1")
        #expect(configuration.failRate == 0.25)
        #expect(configuration.delayMilliseconds == 40)
        #expect(configuration.upstream == UpstreamTarget(host: "backend.weft", port: 8080))
        #expect(configuration.serviceName == "shop")
        #expect(configuration.replicaName == "shop-2")
        #expect(configuration.replicaAddress(port: 9000) == "[fd00::7]:9000")
    }

    @Test func serviceNameWinsOverDeployment() throws {
        let configuration = try DemoConfiguration.parse(
            environment: ["SERVICE_NAME": "a", "WEFT_DEPLOYMENT": "b"], hostname: nil
        )
        #expect(configuration.serviceName == "a")
    }

    @Test func weftDNSAndSearchDomains() throws {
        let configuration = try DemoConfiguration.parse(
            environment: ["WEFT_DNS": "127.0.0.1:1053", "WEFT_CLUSTER_DOMAIN": "weft.internal", "WEFT_NAMESPACE": "shop"], hostname: nil
        )
        #expect(configuration.dnsServer == UpstreamTarget(host: "127.0.0.1", port: 1053))
        #expect(configuration.searchDomains == ["shop.svc.weft.internal", "svc.weft.internal", "weft.internal"])
        #expect(throws: DemoConfigurationError.self) {
            try DemoConfiguration.parse(environment: ["WEFT_DNS": "dns.local:53"], hostname: nil)
        }
        #expect(try DemoConfiguration.parse(environment: [:], hostname: nil).dnsServer == nil)
    }

    @Test func upstreamForms() {
        #expect(UpstreamTarget(parsing: "[::1]:81") == UpstreamTarget(host: "::1", port: 81))
        #expect(UpstreamTarget(parsing: "10.0.0.1:80") == UpstreamTarget(host: "10.0.0.1", port: 80))
        #expect(UpstreamTarget(parsing: "::1:80") == nil)
        #expect(UpstreamTarget(parsing: "host:0") == nil)
        #expect(UpstreamTarget(parsing: ":80") == nil)
        #expect(UpstreamTarget(parsing: "http://host:80") == nil)
    }

    @Test func errorNamesTheVariableAndTheRange() {
        #expect(throws: DemoConfigurationError.self) {
            try DemoConfiguration.parse(environment: ["FAIL_RATE": "abc"], hostname: nil)
        }
        do {
            _ = try DemoConfiguration.parse(environment: ["PORT": "99999"], hostname: nil)
            Issue.record("PORT=99999 accepted")
        } catch {
            #expect(error.variable == "PORT")
            #expect(error.description.contains("0 to 65535"))
        }
    }

    @Test func jsonValidation() {
        #expect(JSONText.isValidDocument(Array(#" {"a":[1,-2.5e3,true,null,"x\"\u00e9"]} "#.utf8)))
        #expect(!JSONText.isValidDocument(Array(#"{"a":1"#.utf8)))
        #expect(!JSONText.isValidDocument(Array("ok".utf8)))
        #expect(!JSONText.isValidDocument(Array(#"{"a":01}"#.utf8)))
        #expect(JSONText.quoted("a\"b\\\n\u{1}") == #""a\"b\\\n\u0001""#)
    }
}
