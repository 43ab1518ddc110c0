import NIOCore
import NIOSSL
import Synchronization
import WeftPKI
import X509

/// A node's mesh credentials: its SVID (certificate chain and key) and the trust bundle its peers'
/// SVIDs must chain to.
public struct MeshCredentials: Sendable {
    public var certificateChainPEM: String
    public var privateKeyPEM: String
    /// One PEM certificate per trusted root; more than one while a CA rotation is under way.
    public var trustBundlePEM: [String]

    public init(certificateChainPEM: String, privateKeyPEM: String, trustBundlePEM: [String]) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.trustBundlePEM = trustBundlePEM
    }
}

/// The TLS contexts of a node's tunnel, both ways, replaced as a whole when the node's certificate is
/// renewed or the trust bundle changes: new connections use the newest contexts, open ones carry on
/// with theirs. TLS 1.3 only; the peer's chain is verified against the bundle (validity included) and
/// its SPIFFE ID checked after the handshake by `PeerIdentityCheck`.
public final class MeshTLS: Sendable {
    /// The contexts of one set of credentials; `generation` grows with each update.
    struct Contexts: Sendable {
        var server: NIOSSLContext
        var client: NIOSSLContext
        var identity: SPIFFEID
        var generation: Int
        var credentials: MeshCredentials
    }

    /// The protocols the inbound port speaks: HTTP/2 CONNECT between nodes, HTTP/1.1 CONNECT for
    /// single workloads and tools (a TLS client that offers no ALPN gets HTTP/1.1).
    static let inboundProtocols = ["h2", "http/1.1"]

    private let current = Mutex<Contexts?>(nil)

    public init() {}

    /// Builds contexts for `credentials`; on any error the previous contexts stay in use.
    public func update(_ credentials: MeshCredentials) throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(credentials.certificateChainPEM.utf8))
        guard let leaf = chain.first else { throw PKIError(code: .invalidArgument, reason: "the mesh certificate chain is empty") }
        guard let identity = try PeerIdentity.spiffeID(of: leaf) else {
            throw PKIError(code: .invalidArgument, reason: "the mesh certificate carries no SPIFFE ID")
        }
        let key = try NIOSSLPrivateKey(bytes: Array(credentials.privateKeyPEM.utf8), format: .pem)
        var roots: [NIOSSLCertificate] = []
        for pem in credentials.trustBundlePEM {
            roots += try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        }
        guard !roots.isEmpty else { throw PKIError(code: .invalidArgument, reason: "the trust bundle is empty") }

        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion = .tlsv13
        server.certificateVerification = .noHostnameVerification  // a client certificate is required
        server.trustRoots = .certificates(roots)
        server.applicationProtocols = Self.inboundProtocols

        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        client.certificateVerification = .noHostnameVerification  // the SPIFFE ID is checked instead
        client.trustRoots = .certificates(roots)
        client.applicationProtocols = ["h2"]

        let serverContext = try NIOSSLContext(configuration: server)
        let clientContext = try NIOSSLContext(configuration: client)
        current.withLock { contexts in
            contexts = Contexts(server: serverContext, client: clientContext, identity: identity,
                                generation: (contexts?.generation ?? 0) + 1, credentials: credentials)
        }
    }

    /// Rebuilds the contexts with a new trust bundle and the current certificate (a CA rotation step).
    /// Does nothing before the node has a certificate, or when the bundle is unchanged.
    public func updateTrustBundle(_ bundle: [String]) throws {
        guard var credentials = contexts?.credentials, credentials.trustBundlePEM != bundle else { return }
        credentials.trustBundlePEM = bundle
        try update(credentials)
    }

    /// The roots peers are verified with now (empty before the node has a certificate).
    public var trustBundlePEM: [String] { current.withLock { $0?.credentials.trustBundlePEM ?? [] } }

    /// The newest contexts, or nil before the node has its certificate.
    var contexts: Contexts? { current.withLock { $0 } }

    /// The generation of the newest contexts (0 before the first).
    public var generation: Int { current.withLock { $0?.generation ?? 0 } }

    /// The node's own SPIFFE ID, once it has a certificate.
    public var identity: SPIFFEID? { current.withLock { $0?.identity } }
}

/// Reads SPIFFE IDs off certificates presented in a handshake.
enum PeerIdentity {
    static func spiffeID(of certificate: NIOSSLCertificate) throws -> SPIFFEID? {
        SPIFFEID(certificate: try Certificate(derEncoded: certificate.toDERBytes()))
    }
}
