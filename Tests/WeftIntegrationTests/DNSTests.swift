import Foundation
import Testing
import WeftCore

/// The node DNS server of a real `weft server`, asked with `dig` and with Weft's own codec.
extension ClusterTests {
    /// A headless service over 8 replicas (its SRV answer is longer than 512 bytes) next to the VIP
    /// service `web`, both from `demoManifest`.
    private func headlessManifest(marker: String, dataDirectory: URL) -> String {
        demoManifest(name: "web", replicas: 8, marker: marker, dataDirectory: dataDirectory) + """

            ---
            apiVersion: weft/v1
            kind: Service
            metadata:
              name: pods
            spec:
              type: Headless
              selector:
                app: web
              ports:
                - name: http
                  port: 80
                  targetPort: http
            """
    }

    @Test("DNS answers A, SRV, PTR, NXDOMAIN with SOA, NODATA, truncates over UDP, answers whole over TCP, echoes case, forwards to an upstream, and follows apply, delete and readiness",
          .enabled(if: digInstalled, "needs dig (apt-get install bind9-dnsutils)"))
    func dnsServesTheCluster() async throws {
        let stub = try StubResolver()
        defer { stub.stop() }
        try await withWeftServer(arguments: ["--dns-listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:\(stub.port)", "--tunnel-port", "0"]) { server in
            let port = try await server.dnsAddress().port
            let marker = "dns-\(UUID().uuidString.prefix(8))"
            let path = try writeTemporaryFile(headlessManifest(marker: marker, dataDirectory: server.dataDirectory), in: server.dataDirectory, name: "dns.yaml")
            #expect(try await server.cli(["apply", "-f", path]).exit == .exited(0))
            let service = try #require(try await server.items("services").first { $0["name"] as? String == "web" })
            let vip = try #require(service["clusterIP"] as? String)
            try await eventually("8 endpoints of pods") {
                try await dig(port: port, ["+tcp", "+short", "_http._tcp.pods.default.svc.weft.internal", "SRV"]).split(separator: "\n").count == 8
            }

            // A, in the question's case; authoritative.
            let a = try await dig(port: port, ["+noall", "+answer", "+comments", "WEB.Default.svc.weft.internal", "A"])
            #expect(a.contains("status: NOERROR") && a.contains("flags: qr aa rd"), "\(a)")
            let records = a.split(separator: "\n").map { $0.split(whereSeparator: \.isWhitespace).map(String.init) }
            #expect(records.contains(["WEB.Default.svc.weft.internal.", "5", "IN", "A", vip]), "\(a)")
            // SRV of the VIP service, and PTR of its VIP.
            let srv = try await dig(port: port, ["+short", "_http._tcp.web.default.svc.weft.internal", "SRV"])
            #expect(srv == "0 100 80 web.default.svc.weft.internal.", "\(srv)")
            let ptr = try await dig(port: port, ["+short", "-x", vip])
            #expect(ptr == "web.default.svc.weft.internal.", "\(ptr)")
            // NXDOMAIN and NODATA, both with the zone's SOA for negative caching.
            let missing = try await dig(port: port, ["+noall", "+comments", "+authority", "nope.default.svc.weft.internal", "A"])
            #expect(missing.contains("status: NXDOMAIN") && missing.contains("SOA"), "\(missing)")
            let noData = try await dig(port: port, ["+noall", "+comments", "+authority", "web.default.svc.weft.internal", "AAAA"])
            #expect(noData.contains("status: NOERROR") && noData.contains("ANSWER: 0") && noData.contains("SOA"), "\(noData)")

            // 8 SRV records do not fit in 512 bytes: TC over UDP without EDNS; whole with EDNS 1232 and over TCP.
            let plain = try await dig(port: port, ["+noedns", "+ignore", "+noall", "+comments", "_http._tcp.pods.default.svc.weft.internal", "SRV"])
            #expect(plain.contains(" tc"), "\(plain)")
            let edns = try await dig(port: port, ["+bufsize=1232", "+ignore", "+noall", "+comments", "_http._tcp.pods.default.svc.weft.internal", "SRV"])
            #expect(!edns.contains(" tc") && edns.contains("ANSWER: 8") && edns.contains("udp: 1232"), "\(edns)")
            let tcp = try await dig(port: port, ["+tcp", "+noedns", "+noall", "+comments", "_http._tcp.pods.default.svc.weft.internal", "SRV"])
            #expect(!tcp.contains(" tc") && tcp.contains("ANSWER: 8"), "\(tcp)")
            // Per-replica names resolve; the headless name answers the replicas' address.
            let target = try #require(try await dig(port: port, ["+short", "_http._tcp.pods.default.svc.weft.internal", "SRV"])
                .split(separator: "\n").first?.split(separator: " ").last.map(String.init))
            #expect(try await dig(port: port, ["+short", target]) == "127.0.0.1")
            #expect(try await dig(port: port, ["+short", "pods.default.svc.weft.internal"]) == "127.0.0.1")

            // Outside the zone: forwarded to the stub upstream, with recursion available.
            let forwarded = try await dig(port: port, ["+noall", "+answer", "+comments", "upstream.test", "A"])
            #expect(forwarded.contains("127.0.0.99") && forwarded.contains("ra"), "\(forwarded)")
            let nx = try await dig(port: port, ["+noall", "+comments", "nothing.test", "A"])
            #expect(nx.contains("status: NXDOMAIN"), "\(nx)")

            // Freshness: a new service resolves, a deleted one stops, by watch.
            let fresh = try writeTemporaryFile("""
                apiVersion: weft/v1
                kind: Service
                metadata: {name: fresh}
                spec:
                  selector: {app: fresh}
                  ports: [{name: http, port: 8080}]
                """, in: server.dataDirectory, name: "fresh.yaml")
            #expect(try await server.cli(["apply", "-f", fresh]).exit == .exited(0))
            let applied = ContinuousClock.now
            try await eventually(timeout: .seconds(5), "fresh resolves") {
                try await offThePool { try udpQuery(port: port, "fresh.default.svc.weft.internal", .a) }.answers.count == 1
            }
            let resolvedAfter = ContinuousClock.now - applied
            #expect(try await server.cli(["delete", "service", "fresh"]).exit == .exited(0))
            let deleted = ContinuousClock.now
            try await eventually(timeout: .seconds(5), "fresh is gone") {
                try await offThePool { try udpQuery(port: port, "fresh.default.svc.weft.internal", .a) }.responseCode == .nameError
            }
            let goneAfter = ContinuousClock.now - deleted
            // The bound is loose for loaded CI machines; bench/ measures the real figure.
            #expect(resolvedAfter < .seconds(2) && goneAfter < .seconds(2), "resolved after \(resolvedAfter), gone after \(goneAfter)")

            // Headless answers follow readiness: scaled down to 2, the SRV set shrinks to 2.
            #expect(try await server.cli(["scale", "deployment", "web", "--replicas", "2"]).exit == .exited(0))
            try await eventually("2 SRV records") {
                try await dig(port: port, ["+tcp", "+short", "_http._tcp.pods.default.svc.weft.internal", "SRV"]).split(separator: "\n").count == 2
            }
        }
    }

    @Test("the shop's tiers find each other by name: frontend → cart → catalog through DNS and VIPs")
    func shopTiersResolveEachOther() async throws {
        try await withWeftServer { server in
            let shop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("examples/shop").path
            #expect(try await server.cli(["apply", "-f", shop]).exit == .exited(0))
            let frontend = try #require(try await server.items("services").first { $0["name"] as? String == "frontend" })
            let vip = try #require(frontend["clusterIP"] as? String)
            var answer: [String: Any] = [:]
            try await eventually("the frontend answers with the cart's and the catalog's answers") {
                guard let response = try? await httpGet(host: vip, port: 80), response.status == 200 else { return false }
                answer = try response.jsonObject()
                return true
            }
            let cart = try #require(answer["upstream"] as? [String: Any], "\(answer)")
            #expect(cart["service"] as? String == "cart")
            let catalog = try #require(cart["upstream"] as? [String: Any], "\(cart)")
            #expect(catalog["service"] as? String == "catalog")
            // examples/shop/policy.yaml lets only the frontend call the cart: this test process is refused.
            let cartVIP = try #require(try await server.items("services").first { $0["name"] as? String == "cart" }?["clusterIP"] as? String)
            let refused = try? await httpGet(host: cartVIP, port: 80)
            #expect(refused?.status == 403 && refused?.headers["x-weft-proxy"] == "denied", "the cart answered a caller outside the mesh: \(String(describing: refused))")
            #expect(try await server.cli(["delete", "-f", shop]).exit == .exited(0))
        }
    }
}
