import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import WeftCore
@testable import WeftDNS

/// The DNS server on real loopback sockets, with stub upstreams it is pointed at.
@Suite("DNS server on loopback") struct DNSServerTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// A zone with a VIP service `web` and a headless `big` whose 60 replicas make a long answer.
    func zone() throws -> ClusterZone {
        let services = [
            Service(metadata: ObjectMeta(name: "web", namespace: "default"),
                    spec: ServiceSpec(selector: ["app": "web"], ports: [ServicePort(name: "http", port: 80)], clusterIP: "127.10.0.5")),
            Service(metadata: ObjectMeta(name: "big", namespace: "default"),
                    spec: ServiceSpec(selector: ["app": "big"], ports: [ServicePort(name: "http", port: 80)], type: "Headless")),
        ]
        let endpoints = Endpoints(metadata: ObjectMeta(name: "big", namespace: "default"), endpoints: (0..<60).map {
            Endpoint(replica: "big-\($0)", node: "n1", ip: "10.1.0.\($0 + 1)", ports: ["80": 8080])
        })
        return try ClusterZone(clusterDomain: name("weft.internal"), serial: 1, services: services, endpoints: ["default/big": endpoints])
    }

    func withServer<T>(upstreams: [DNSUpstream] = [], timeout: TimeAmount = .seconds(2), idle: TimeAmount = .seconds(10),
                       _ body: (DNSServer) async throws -> T) async throws -> T {
        let server = try await DNSServer.start(
            configuration: DNSServerConfiguration(host: "127.0.0.1", port: 0, upstreams: upstreams, upstreamTimeout: timeout, tcpIdleTimeout: idle),
            zone: try zone(), group: group, logger: testLogger)
        do {
            let result = try await body(server)
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }

    @Test func answersTheZoneOverUDPAndTCPOnOnePort() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            let (udp, tcp) = try await blocking {
                (try DNSTestClient(port: port).ask(query("web.default.svc.weft.internal", .a)),
                 try DNSTestClient(port: port, tcp: true).ask(query("web.default.svc.weft.internal", .a)))
            }
            for response in [udp, tcp] {
                #expect(response.flags.isAuthoritative && response.responseCode == .noError)
                #expect(response.answers.map(\.data) == [.a(IPv4Address(127, 10, 0, 5))])
            }
        }
    }

    @Test func aLongAnswerIsTruncatedOverUDPAndWholeOverTCP() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            let (plain, withEDNS, overTCP) = try await blocking {
                (try DNSTestClient(port: port).ask(query("big.default.svc.weft.internal", .a)),
                 try DNSTestClient(port: port).ask(query("big.default.svc.weft.internal", .a, edns: EDNS(udpPayloadSize: 1232))),
                 try DNSTestClient(port: port, tcp: true).ask(query("big.default.svc.weft.internal", .a)))
            }
            #expect(plain.flags.isTruncated && plain.answers.count < 60)
            #expect(plain.encoded().count <= 512)
            #expect(!withEDNS.flags.isTruncated && withEDNS.answers.count == 60)   // 60 × 16 bytes fit in 1232
            #expect(withEDNS.edns?.udpPayloadSize == 1232)
            #expect(!overTCP.flags.isTruncated && overTCP.answers.count == 60)
        }
    }

    @Test func severalQueriesShareOneTCPConnectionWhichClosesWhenIdle() async throws {
        try await withServer(idle: .milliseconds(300)) { server in
            let port = server.localAddress.port!
            let (answers, afterIdle) = try await blocking {
                let client = try DNSTestClient(port: port, tcp: true)
                // Three queries in one write.
                let queries = (0..<3).map { query("web.default.svc.weft.internal", .a, id: UInt16(100 + $0)) }
                try client.sendRaw(queries[0].encoded())
                try client.sendRaw(queries[1].encoded())
                try client.sendRaw(queries[2].encoded())
                let answers = try (0..<3).map { _ in try DNSMessage(decoding: try client.receiveRaw() ?? []).id }
                Thread.sleep(forTimeInterval: 0.8)
                return (answers, try client.receiveRaw())
            }
            #expect(Set(answers) == [100, 101, 102])
            #expect(afterIdle == nil, "the idle connection should have been closed")
        }
    }

    @Test func malformedPacketsGetFormErrOrNothingAndTheServerCarriesOn() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            let results = try await blocking { () -> [DNSMessage?] in
                let client = try DNSTestClient(port: port, timeout: 0.3)
                var results: [DNSMessage?] = []
                for packet in [[0x01, 0x02], [0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0], [UInt8](repeating: 0xFF, count: 600)] as [[UInt8]] {
                    try client.sendRaw(packet)
                    results.append(try client.receiveRaw().flatMap { try? DNSMessage(decoding: $0) })
                }
                results.append(try client.ask(query("web.default.svc.weft.internal", .a)))
                return results
            }
            #expect(results[0] == nil)                                  // no header: dropped
            #expect(results[1]?.responseCode == .formatError && results[1]?.id == 0xABCD)
            #expect(results[2] == nil)                                  // QR set: a response, dropped
            #expect(results[3]?.answers.count == 1)
        }
    }

    @Test func outsideNamesAreRefusedWithoutUpstreams() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            let response = try await blocking { try DNSTestClient(port: port).ask(query("example.com", .a)) }
            #expect(response.responseCode == .refused && !response.flags.recursionAvailable)
        }
    }

    @Test func forwardsCachesAndFailsOver() async throws {
        let stub = try await StubUpstream.start(group: group) { query, _ in
            let question = query.questions[0]
            if question.name == name("missing.test") {
                let soa = DNSRecord(name: name("test"), ttl: 30, data: .soa(DNSSOA(
                    primaryServer: name("ns.test"), responsibleMailbox: name("root.test"), serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 30)))
                return reply(to: query, code: .nameError, authorities: [soa])
            }
            return reply(to: query, answers: [.a(IPv4Address(127, 0, 0, 42))])
        }
        // The first upstream is a port nothing answers on: each query waits out its 300 ms, then fails over.
        let silent = try await StubUpstream.start(group: group) { _, _ in nil }
        defer { Task { await stub.stop(); await silent.stop() } }
        try await withServer(upstreams: [DNSUpstream(host: "127.0.0.1", port: silent.port), DNSUpstream(host: "127.0.0.1", port: stub.port)],
                             timeout: .milliseconds(300)) { server in
            let port = server.localAddress.port!
            let (first, second, missing, missingAgain) = try await blocking {
                let client = try DNSTestClient(port: port)
                return (try client.ask(query("Host.Test", .a)), try client.ask(query("host.test", .a)),
                        try client.ask(query("missing.test", .a)), try client.ask(query("missing.test", .a)))
            }
            #expect(first.answers.map(\.data) == [.a(IPv4Address(127, 0, 0, 42))])
            #expect(first.questions[0].name.description == "Host.Test.")
            #expect(first.flags.recursionAvailable && !first.flags.isAuthoritative)
            #expect(second.answers.map(\.data) == first.answers.map(\.data))
            #expect(second.answers[0].ttl <= 60)
            #expect(missing.responseCode == .nameError && missing.authorities.first?.type == .soa)
            #expect(missingAgain.responseCode == .nameError)
            // One upstream query per name: the rest came from the cache.
            #expect(stub.queries["udp host.test."] == 1 || stub.queries["udp Host.Test."] == 1, "\(stub.queries)")
            #expect(stub.queries["udp missing.test."] == 1, "\(stub.queries)")
            #expect(silent.queries.values.reduce(0, +) == 2, "\(silent.queries)")
        }
    }

    @Test func aTruncatedUpstreamAnswerIsFetchedAgainOverTCP() async throws {
        let stub = try await StubUpstream.start(group: group) { query, tcp in
            var response = reply(to: query, answers: (1...3).map { .a(IPv4Address(127, 0, 1, $0)) })
            if !tcp {
                response.answers = []
                response.flags.isTruncated = true
            }
            return response
        }
        defer { Task { await stub.stop() } }
        try await withServer(upstreams: [DNSUpstream(host: "127.0.0.1", port: stub.port)]) { server in
            let port = server.localAddress.port!
            let response = try await blocking { try DNSTestClient(port: port).ask(query("many.test", .a)) }
            #expect(response.answers.count == 3 && !response.flags.isTruncated)
            #expect(stub.queries["tcp many.test."] == 1, "\(stub.queries)")
        }
    }

    @Test func everyUpstreamFailingIsServFail() async throws {
        let failing = try await StubUpstream.start(group: group) { query, _ in reply(to: query, code: .serverFailure) }
        defer { Task { await failing.stop() } }
        try await withServer(upstreams: [DNSUpstream(host: "127.0.0.1", port: failing.port)]) { server in
            let port = server.localAddress.port!
            let response = try await blocking { try DNSTestClient(port: port).ask(query("down.test", .a)) }
            #expect(response.responseCode == .serverFailure)
        }
    }

    @Test func updatingTheZoneChangesTheAnswers() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            let before = try await blocking { try DNSTestClient(port: port).ask(query("web.default.svc.weft.internal", .a)) }
            server.update(zone: try ClusterZone(clusterDomain: name("weft.internal"), serial: 2, services: [], endpoints: [:]))
            let after = try await blocking { try DNSTestClient(port: port).ask(query("web.default.svc.weft.internal", .a)) }
            #expect(before.responseCode == .noError)
            #expect(after.responseCode == .nameError)
        }
    }

    @Test func aTakenAddressIsAClearError() async throws {
        try await withServer { server in
            let port = server.localAddress.port!
            await #expect {
                _ = try await DNSServer.start(configuration: DNSServerConfiguration(host: "127.0.0.1", port: port), zone: try zone(),
                                              group: group, logger: testLogger)
            } throws: { error in
                "\(error)".contains("cannot serve DNS on 127.0.0.1:\(port)") && "\(error)".contains("--dns-listen")
            }
        }
    }
}
