import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP2
import NIOSSL
import Testing
import WeftPKI
@testable import WeftProxy

/// The tunnel's peer verification, handshake by handshake in memory: two EmbeddedChannels, one with
/// the client side of a tunnel connection and one with the inbound side, bytes pumped between them
/// (as swift-nio-ssl's own tests do).
@Suite("Tunnel handshakes in memory", .timeLimit(.minutes(1)))
struct HandshakeTests {
    static let trustDomain = "mesh.test"
    let ca = try! CertificateAuthority.create()
    let nodeA = try! SPIFFEID.node("a", trustDomain: trustDomain)
    let nodeB = try! SPIFFEID.node("b", trustDomain: trustDomain)

    struct Outcome {
        /// The client accepted the server and set up HTTP/2.
        var clientReady: Bool
        var clientError: String?
        /// The inbound side accepted the client (its handshake handler is gone, HTTP/2 or HTTP/1.1 in place).
        var serverAccepted: Bool
        var serverHandshakeFailures: Int
    }

    /// Runs one handshake: the client dials expecting `expected`, with `client` credentials; the
    /// inbound side presents `server` credentials.
    func handshake(client: MeshCredentials, server: MeshCredentials, expected: SPIFFEID, clientALPN: [String] = ["h2"]) throws -> Outcome {
        let clientTLS = MeshTLS(), serverTLS = MeshTLS()
        try clientTLS.update(client)
        try serverTLS.update(server)
        let loop = EmbeddedEventLoop()
        let clientChannel = EmbeddedChannel(loop: loop), serverChannel = EmbeddedChannel(loop: loop)
        defer {
            // Not finish(): its close waits for the TLS close_notify exchange, which only pumping completes.
            clientChannel.close(promise: nil)
            serverChannel.close(promise: nil)
            try? pump(clientChannel, serverChannel)
            loop.advanceTime(by: .seconds(30))
        }
        let stats = TunnelInbound.Stats()
        let service = InboundService(tls: serverTLS, authorize: { _ in .allow }, stats: stats,
                                     logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try serverChannel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS.contexts!.server))
        try serverChannel.pipeline.syncOperations.addHandler(TunnelServerHandshake(service: service, trustDomain: Self.trustDomain, streams: TunnelProtocol.streamConfiguration))

        var contexts = clientTLS.contexts!
        if clientALPN != ["h2"] {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv13
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(client.certificateChainPEM.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(client.privateKeyPEM.utf8), format: .pem))
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try client.trustBundlePEM.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            configuration.applicationProtocols = clientALPN
            contexts.client = try NIOSSLContext(configuration: configuration)
        }
        let ready = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
        var outcome = Outcome(clientReady: false, serverAccepted: false, serverHandshakeFailures: 0)
        ready.futureResult.whenComplete { result in
            switch result {
            case .success: outcome.clientReady = true
            case .failure(let error): outcome.clientError = "\(error)"
            }
        }
        try clientChannel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: contexts.client, serverHostname: nil))
        if clientALPN == ["h2"] {
            try clientChannel.pipeline.syncOperations.addHandler(TunnelClientHandshake(expected: expected, maxConcurrentStreams: 10, ready: ready))
        }

        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 15008)
        _ = try serverChannel.connect(to: address).wait()
        _ = try clientChannel.connect(to: address).wait()
        try pump(clientChannel, serverChannel)
        if !outcome.clientReady, outcome.clientError == nil {
            outcome.clientError = "the handshake did not finish"
        }
        outcome.serverAccepted = (try? serverChannel.pipeline.syncOperations.handler(type: TunnelServerHandshake.self)) == nil
            && serverChannel.isActive
        outcome.serverHandshakeFailures = stats.snapshot().handshakeFailures
        return outcome
    }

    /// Moves bytes both ways until neither side has anything more to send.
    func pump(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        for _ in 0..<100 {
            var moved = false
            while let data = try a.readOutbound(as: ByteBuffer.self) {
                moved = true
                if b.isActive { try? b.writeInbound(data) }
            }
            while let data = try b.readOutbound(as: ByteBuffer.self) {
                moved = true
                if a.isActive { try? a.writeInbound(data) }
            }
            (a.eventLoop as! EmbeddedEventLoop).run()
            if !moved { return }
        }
    }

    func credentials(_ id: SPIFFEID, ca: CertificateAuthority? = nil, bundle: [String]? = nil, validity: TimeInterval = 3600,
                     now: Date = Date()) throws -> MeshCredentials {
        let issuer = ca ?? self.ca
        let request = try IdentityRequest(identity: id)
        let certificate = try issuer.issue(csr: request.csr, identity: id, validity: validity, now: now)
        return MeshCredentials(certificateChainPEM: try certificate.serializeAsPEM().pemString,
                               privateKeyPEM: try request.privateKey.serializeAsPEM().pemString,
                               trustBundlePEM: bundle ?? [self.ca.certificatePEM])
    }

    @Test func nodesOfOneTrustDomainAcceptEachOther() throws {
        let outcome = try handshake(client: try credentials(nodeA), server: try credentials(nodeB), expected: nodeB)
        #expect(outcome.clientReady, "\(outcome.clientError ?? "")")
        #expect(outcome.serverAccepted)
        #expect(outcome.serverHandshakeFailures == 0)
    }

    @Test func theClientRefusesAServerThatIsNotTheNodeItDialled() throws {
        let nodeC = try SPIFFEID.node("c", trustDomain: Self.trustDomain)
        let outcome = try handshake(client: try credentials(nodeA), server: try credentials(nodeB), expected: nodeC)
        #expect(!outcome.clientReady)
        #expect(outcome.clientError?.contains("is spiffe://mesh.test/node/b, not spiffe://mesh.test/node/c") == true, "\(outcome.clientError ?? "")")
    }

    // In TLS 1.3 the client finishes its side of the handshake before the server has judged the
    // client's certificate; the server then refuses and nothing it serves is reached.
    @Test func aClientCertificateFromAnotherCAFailsTheHandshake() throws {
        let foreign = try CertificateAuthority.create(commonName: "foreign")
        let client = try credentials(nodeA, ca: foreign, bundle: [ca.certificatePEM])
        let outcome = try handshake(client: client, server: try credentials(nodeB), expected: nodeB)
        #expect(!outcome.serverAccepted)
        #expect(outcome.serverHandshakeFailures == 1)
    }

    @Test func anExpiredClientCertificateFailsTheHandshake() throws {
        let client = try credentials(nodeA, validity: 3600, now: Date().addingTimeInterval(-7200))
        let outcome = try handshake(client: client, server: try credentials(nodeB), expected: nodeB)
        #expect(!outcome.serverAccepted)
        #expect(outcome.serverHandshakeFailures == 1)
    }

    @Test func meshCredentialsNeedACertificate() throws {
        var client = try credentials(nodeA)
        client.certificateChainPEM = ""
        #expect(throws: (any Error).self) { try MeshTLS().update(client) }
    }

    @Test func aServerFromAnotherCAIsRefusedByTheClient() throws {
        let foreign = try CertificateAuthority.create(commonName: "foreign")
        let server = try credentials(nodeB, ca: foreign, bundle: [ca.certificatePEM, foreign.certificatePEM])
        let outcome = try handshake(client: try credentials(nodeA), server: server, expected: nodeB)
        #expect(!outcome.clientReady)
    }

    @Test func aPeerOfAnotherTrustDomainIsRefusedAfterTheHandshake() throws {
        let stranger = try SPIFFEID.node("a", trustDomain: "elsewhere.test")
        let outcome = try handshake(client: try credentials(stranger), server: try credentials(nodeB), expected: nodeB)
        #expect(!outcome.serverAccepted)
        #expect(outcome.serverHandshakeFailures == 1)
    }

    @Test func aWorkloadCertificateIsAcceptedForHTTP1Connect() throws {
        let workload = try SPIFFEID.workload(namespace: "default", serviceAccount: "web", trustDomain: Self.trustDomain)
        let outcome = try handshake(client: try credentials(workload), server: try credentials(nodeB), expected: nodeB, clientALPN: [])
        #expect(outcome.serverAccepted)
        #expect(outcome.serverHandshakeFailures == 0)
    }
}
