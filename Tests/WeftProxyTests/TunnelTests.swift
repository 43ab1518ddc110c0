import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization
import Testing
import WeftCore
import WeftPKI
@testable import WeftProxy

/// Node "a" (a `NodeProxy` with a tunnel client) reaching replicas of node "b" (a `TunnelInbound` in
/// front of echo backends), all on loopback with real TLS and a real CA.
final class TunnelFixture: Sendable {
    static let trustDomain = "mesh.test"
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let ca: CertificateAuthority
    let nodeA = try! SPIFFEID.node("a", trustDomain: trustDomain)
    let nodeB = try! SPIFFEID.node("b", trustDomain: trustDomain)
    let frontend = try! SPIFFEID.workload(namespace: "default", serviceAccount: "frontend", trustDomain: trustDomain)
    let tlsA = MeshTLS()
    let tlsB = MeshTLS()
    let tunnels: TunnelClient
    let proxy: NodeProxy
    let sockets: SocketFixture
    /// Every request the inbound was asked to decide.
    let requests = Mutex<[TunnelRequest]>([])
    let verdict = Mutex<TunnelVerdict>(.allow)
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    init() throws {
        ca = try CertificateAuthority.create()
        try tlsA.update(try Self.credentials(nodeA, ca: ca))
        try tlsB.update(try Self.credentials(nodeB, ca: ca))
        tunnels = TunnelClient(tls: tlsA, logger: Self.logger)
        let frontend = self.frontend
        proxy = NodeProxy(group: group, logger: Self.logger,
                          mesh: MeshRouting(tunnels: tunnels, sourceIdentity: { _, _ in frontend }))
        sockets = SocketFixture()
    }

    static func credentials(_ id: SPIFFEID, ca: CertificateAuthority, validity: TimeInterval = 3600,
                            now: Date = Date()) throws -> MeshCredentials {
        let request = try IdentityRequest(identity: id)
        let certificate = try ca.issue(csr: request.csr, identity: id, validity: validity, now: now)
        return MeshCredentials(certificateChainPEM: try certificate.serializeAsPEM().pemString,
                               privateKeyPEM: try request.privateKey.serializeAsPEM().pemString,
                               trustBundlePEM: [ca.certificatePEM])
    }

    func startInbound(tls: MeshTLS? = nil, streams: NIOHTTP2Handler.StreamConfiguration = TunnelProtocol.streamConfiguration) async throws -> TunnelInbound {
        try await TunnelInbound.start(host: "127.0.0.1", port: 0, group: group, tls: tls ?? tlsB, authorize: { request in
            self.requests.withLock { $0.append(request) }
            return self.verdict.withLock { $0 }
        }, streams: streams, logger: Self.logger)
    }

    /// A listener on node a whose only backend is `backendPort` on node b, through `inbound`.
    func tunnelledListener(port: Int, backendPort: Int, inbound: TunnelInbound, identity: SPIFFEID? = nil) -> ListenerConfiguration {
        let tunnel = TunnelConfiguration(address: "127.0.0.1:\(inbound.localAddress!.port!)", identity: (identity ?? nodeB).description)
        return ListenerConfiguration(name: "cross", address: "127.0.0.1", port: port,
                                     backends: [BackendConfiguration(address: "127.0.0.1", port: backendPort, tunnel: tunnel)],
                                     connectAttempts: 1)
    }

    static func run(_ body: (TunnelFixture) async throws -> Void) async throws {
        let fixture = try TunnelFixture()
        var failure: (any Error)?
        do { try await body(fixture) } catch { failure = error }
        await fixture.proxy.shutdown()
        await fixture.sockets.proxy.shutdown()
        try? await fixture.group.shutdownGracefully()
        try? await fixture.sockets.group.shutdownGracefully()
        if let failure { throw failure }
    }
}

extension SocketFixture {
    /// `exchange` with a connection the proxy gives up on. It closes it, with a FIN, or with a reset when
    /// the message is still unread in its socket (Linux does that): either way nothing comes back.
    func exchangeRefused(_ port: Int, _ message: String) async throws -> String {
        do {
            return try await exchange(port, message)
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            return ""
        }
    }
}

@Suite("mTLS tunnel between node proxies", .timeLimit(.minutes(1)))
struct TunnelTests {
    @Test func streamsCrossNodesOverOnePooledConnection() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            for i in 0..<20 {
                #expect(try await f.sockets.exchange(port, "hello \(i)") == "b|hello \(i)")
            }
            // A large payload, to cross flow-control windows both ways.
            let big = String(repeating: "0123456789", count: 900)
            #expect(try await f.sockets.exchange(port, big) == "b|" + big)

            #expect(inbound.counters().streams == 21)
            #expect(inbound.counters().handshakeFailures == 0)
            // Sequential streams from one event loop share one connection; at most one per loop.
            #expect((1...2).contains(f.tunnels.counters.connections))
            let requests = f.requests.withLock { $0 }
            #expect(requests.count == 21)
            #expect(requests.allSatisfy { $0.peer == f.nodeA && $0.source == f.frontend && $0.destination == "127.0.0.1:\(backendPort)" })
        }
    }

    /// Far more streams than HTTP/2's default reset budget (200 per 30 s), each closed abruptly by the
    /// client, over the same pooled connections: every one is served.
    @Test func manyShortStreamsKeepWorking() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))
            for i in 0..<600 {
                let channel = try await f.sockets.connect(port)
                let reply = try await channel.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "ping \(i)"))
                    return try await readUntil(&iterator, contains: "ping \(i)")
                }
                guard reply == "b|ping \(i)" else {
                    Issue.record("connection \(i) got \"\(reply)\"")
                    return
                }
            }
            #expect(inbound.counters().streams == 600)
        }
    }

    /// One event loop: five concurrent client connections with at most two streams per tunnel
    /// connection take three tunnel connections; once every stream is done they close after the idle time.
    @Test func thePoolCapsStreamsPerConnectionAndReleasesIdleConnections() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            var settings = TunnelClient.Settings()
            settings.maxStreamsPerConnection = 2
            settings.idleTimeout = .seconds(2)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let tunnels = TunnelClient(tls: f.tlsA, settings: settings, logger: TunnelFixture.logger)
            let proxy = NodeProxy(group: group, logger: TunnelFixture.logger, mesh: MeshRouting(tunnels: tunnels, sourceIdentity: { _, _ in nil }))
            let port = try await f.sockets.freePort()
            try await proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            // Five client connections open at once (each held while the next one opens).
            func hold(_ i: Int) async throws {
                guard i < 5 else {
                    #expect(tunnels.counters.connections == 3)
                    #expect(tunnels.openConnections == 3)
                    return
                }
                let channel = try await f.sockets.connect(port)
                try await channel.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "held \(i)"))
                    #expect(try await readUntil(&iterator, contains: "held \(i)") == "b|held \(i)")
                    try await hold(i + 1)
                }
            }
            try await hold(0)
            // Every client connection is closed now; the tunnel connections go after the idle time.
            try await Task.sleep(for: .milliseconds(200))
            #expect(tunnels.openConnections == 3, "closed before the idle time")
            var waited = 0
            while tunnels.openConnections > 0, waited < 100 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            #expect(tunnels.openConnections == 0)
            await proxy.shutdown()
            try await group.shutdownGracefully()
        }
    }

    @Test func deniedStreamsAreRefusedAtTheDestinationWithoutRetryOrEjection() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            f.verdict.withLock { $0 = .deny("no rule allows it") }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            var listener = f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)
            listener.connectAttempts = 3
            try await f.proxy.apply(ProxyConfiguration(listeners: [listener]))

            for _ in 0..<3 {
                #expect(try await f.sockets.exchangeRefused(port, "hello") == "")
            }
            #expect(inbound.counters().denied == 3)
            #expect(inbound.counters().streams == 0)
            let counters = try #require(f.proxy.counters().first)
            #expect(counters.connectionsFailed == 3)
            #expect(counters.backends.first?.connectFailures == 0)
            #expect(counters.backends.first?.ejected == false)
        }
    }

    @Test func aPeerWithTheWrongIdentityGetsNothing() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            // Node a expects node c at b's address: the handshake succeeds, the identity check fails.
            let nodeC = try SPIFFEID.node("c", trustDomain: TunnelFixture.trustDomain)
            try await f.proxy.apply(ProxyConfiguration(listeners: [
                f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound, identity: nodeC),
            ]))
            #expect(try await f.sockets.exchangeRefused(port, "hello") == "")
            #expect(f.requests.withLock { $0.isEmpty })
        }
    }

    @Test func aCertificateFromAnotherCAFailsTheHandshake() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            // Node a's certificate comes from a foreign CA (its bundle trusts both, so only b refuses).
            let foreign = try CertificateAuthority.create(commonName: "foreign")
            var credentials = try TunnelFixture.credentials(f.nodeA, ca: foreign)
            credentials.trustBundlePEM.append(f.ca.certificatePEM)
            try f.tlsA.update(credentials)
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))
            #expect(try await f.sockets.exchangeRefused(port, "hello") == "")
            #expect(inbound.counters().handshakeFailures >= 1)
            #expect(inbound.counters().streams == 0)
        }
    }

    @Test func newCredentialsApplyToNewConnectionsAndOpenStreamsCarryOn() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            let open = try await f.sockets.connect(port)
            try await open.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await outbound.write(ByteBuffer(string: "before"))
                #expect(try await readUntil(&iterator, contains: "before") == "b|before")
                let connectionsBefore = f.tunnels.counters.connections

                // Renewal: a new key and certificate for node a, and for node b's inbound.
                try f.tlsA.update(try TunnelFixture.credentials(f.nodeA, ca: f.ca))
                try f.tlsB.update(try TunnelFixture.credentials(f.nodeB, ca: f.ca))
                #expect(try await f.sockets.exchange(port, "after") == "b|after")
                #expect(f.tunnels.counters.connections == connectionsBefore + 1)

                try await outbound.write(ByteBuffer(string: "still"))
                #expect(try await readUntil(&iterator, contains: "still") == "still")
            }
        }
    }
}

/// Clients that hang up abruptly (the way HTTP clients close once they have the response), each of
/// which makes node a's proxy reset its tunnel stream.
@Suite("mTLS tunnel under stream resets", .timeLimit(.minutes(1)))
struct TunnelResetTests {
    /// Sends `message` to 127.0.0.1:`port`, reads until `expected` has arrived, then closes with a TCP
    /// reset (SO_LINGER 0), so the proxy resets the stream while it is open both ways.
    static func exchangeThenReset(port: Int, _ message: String, expecting expected: String) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    guard fd >= 0 else { throw SocketError(what: "socket") }
                    defer { close(fd) }
                    var timeout = timeval(tv_sec: 5, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    var address = sockaddr_in()
                    address.sin_family = sa_family_t(AF_INET)
                    address.sin_port = UInt16(port).bigEndian
                    address.sin_addr.s_addr = inet_addr("127.0.0.1")
                    let connected = withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                    guard connected == 0 else { throw SocketError(what: "connect") }
                    _ = message.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    var received = ""
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while !received.contains(expected) {
                        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                        guard count > 0 else { break }
                        received += String(decoding: buffer[0..<count], as: UTF8.self)
                    }
                    var reset = linger(l_onoff: 1, l_linger: 0)
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                    return received
                })
            }
        }
    }

    struct SocketError: Error { var what: String }

    @Test func aBusyConnectionOfResetStreamsKeepsServing() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            // More resets than NIO lets a peer send by default (200 per 30 s) before it says GOAWAY.
            var failures = 0
            for i in 0..<400 where try await Self.exchangeThenReset(port: port, "hello \(i)", expecting: "hello \(i)") != "b|hello \(i)" {
                failures += 1
            }
            #expect(failures == 0)
            #expect(inbound.counters().streams == 400)
            #expect((1...2).contains(f.tunnels.counters.connections), "connections: \(f.tunnels.counters.connections)")
        }
    }

    @Test func aConnectionThePeerSaysGoAwayOnIsRetired() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            // A peer that says GOAWAY after 5 resets, as NIO's rapid-reset guard does after 200.
            var streams = TunnelProtocol.streamConfiguration
            streams.streamResetFrameRateLimit.maximumCount = 5
            streams.streamResetFrameRateLimit.windowLength = .seconds(30)
            let inbound = try await f.startInbound(streams: streams)
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            // Every exchange is answered: a connection that went away takes no more streams, and the
            // next stream opens a new one (before, they went unanswered on it until the deadline).
            for i in 0..<30 {
                let started = ContinuousClock.now
                #expect(try await Self.exchangeThenReset(port: port, "hello \(i)", expecting: "hello \(i)") == "b|hello \(i)")
                #expect(ContinuousClock.now - started < .milliseconds(900), "exchange \(i) waited for a deadline")
            }
            #expect(f.tunnels.counters.connections >= 3, "connections: \(f.tunnels.counters.connections)")
            #expect(inbound.counters().streams == 30)
        }
    }
}

@Suite("mTLS tunnel through a CA rotation", .timeLimit(.minutes(1)))
struct TunnelRotationTests {
    /// Both nodes step through prepare → activate → retire while connections keep opening and one
    /// long-lived connection keeps talking: not one exchange fails.
    @Test func noConnectionFailsAtAnyStepOfARotation() async throws {
        try await TunnelFixture.run { f in
            let (backend, backendPort) = try await f.sockets.startBackend("b")
            defer { backend.close(promise: nil) }
            let inbound = try await f.startInbound()
            defer { Task { await inbound.shutdown() } }
            let port = try await f.sockets.freePort()
            try await f.proxy.apply(ProxyConfiguration(listeners: [f.tunnelledListener(port: port, backendPort: backendPort, inbound: inbound)]))

            let old = f.ca
            let new = try CertificateAuthority.create(commonName: "weft-mesh-root")
            let nodes = [(f.tlsA, f.nodeA), (f.tlsB, f.nodeB)]
            let open = try await f.sockets.connect(port)
            try await open.executeThenClose { received, outbound in
                var iterator = received.makeAsyncIterator()
                var exchanges = 0
                func traffic(_ step: String) async throws {
                    for i in 0..<10 {
                        #expect(try await f.sockets.exchange(port, "\(step) \(i)") == "b|\(step) \(i)", "new connection at \(step)")
                        exchanges += 1
                    }
                    try await outbound.write(ByteBuffer(string: "<\(step)>"))
                    #expect(try await readUntil(&iterator, contains: "<\(step)>").hasSuffix("<\(step)>"), "open connection at \(step)")
                }
                try await traffic("start")
                // 1. The new root joins both bundles.
                for (tls, _) in nodes { try tls.updateTrustBundle([old.certificatePEM, new.certificatePEM]) }
                try await traffic("prepared")
                // 2. Node a renews from the new root first, node b a moment later.
                var bundle = [old.certificatePEM, new.certificatePEM]
                for (tls, id) in nodes {
                    var credentials = try TunnelFixture.credentials(id, ca: new)
                    credentials.trustBundlePEM = bundle
                    try tls.update(credentials)
                    try await traffic("activated \(id)")
                }
                // 3. The old root leaves both bundles.
                bundle = [new.certificatePEM]
                for (tls, _) in nodes { try tls.updateTrustBundle(bundle) }
                try await traffic("retired")
                #expect(exchanges == 50)
            }
            #expect(inbound.counters().handshakeFailures == 0)
        }
    }
}

@Suite("HTTP mode through the mTLS tunnel", .timeLimit(.minutes(1)))
struct HTTPTunnelTests {
    @Test func requestsReuseOnePooledTunnelStream() async throws {
        try await TunnelFixture.run { f in
            try await HTTPFixture.run { h in
                let backend = try await h.backend("remote")
                let inbound = try await f.startInbound()
                defer { Task { await inbound.shutdown() } }
                let port = try await f.sockets.freePort()
                var listener = f.tunnelledListener(port: port, backendPort: backend.port, inbound: inbound)
                listener.protocol = .http
                listener.service = "default/remote"
                try await f.proxy.apply(ProxyConfiguration(listeners: [listener]))

                let client = try await TestHTTPClient(group: f.group, port: port)
                for i in 0..<10 {
                    let response = try await client.send(.GET, "/\(i)")
                    #expect(response.head.status == .ok && response.backend == "remote")
                }
                let echoed = try await client.send(.POST, "/echo", chunks: ["over ", "the ", "tunnel"])
                #expect(echoed.head.status == .ok)
                await client.close()
                // Keep-alive upstream "connections" here are tunnel streams, pooled per backend and
                // source identity: one stream carried all of them.
                #expect(inbound.counters().streams == 1)
                #expect(f.requests.withLock { $0 }.allSatisfy { $0.source == f.frontend })
                #expect(backend.served.value == 11)
                #expect(f.proxy.trafficSamples().first?.requests == 11)
            }
        }
    }

    @Test func aDeniedCallerGets403WithTheReasonAndNoRetry() async throws {
        try await TunnelFixture.run { f in
            try await HTTPFixture.run { h in
                let backend = try await h.backend("remote")
                let inbound = try await f.startInbound()
                defer { Task { await inbound.shutdown() } }
                f.verdict.withLock { $0 = .deny("no rule of default/remote allows spiffe://a.test/ns/default/sa/frontend") }
                let port = try await f.sockets.freePort()
                var listener = f.tunnelledListener(port: port, backendPort: backend.port, inbound: inbound)
                listener.protocol = .http
                listener.service = "default/remote"
                try await f.proxy.apply(ProxyConfiguration(listeners: [listener]))

                let client = try await TestHTTPClient(group: f.group, port: port)
                let denied = try await client.send(.GET, "/")
                #expect(denied.head.status == .forbidden)
                #expect(denied.head.headers["x-weft-proxy"] == ["denied"])
                #expect(denied.body.contains("no rule of default/remote allows"), "\(denied.body)")
                // One stream asked, not retried; the backend is not marked as failing and never saw the request.
                #expect(inbound.counters().denied == 1)
                #expect(backend.served.value == 0)
                let counters = try #require(f.proxy.counters().first)
                #expect(counters.http.denied == 1)
                #expect(counters.backends.first?.connectFailures == 0)
                // The same keep-alive connection is served once the policy allows the caller.
                f.verdict.withLock { $0 = .allow }
                #expect(try await client.send(.GET, "/").head.status == .ok)
                await client.close()
            }
        }
    }
}
