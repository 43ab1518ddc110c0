import Foundation
import Logging
import WeftClient
import WeftPKI
import WeftProxy

/// The node's SPIFFE certificate (`spiffe://<trust-domain>/node/<name>`): a key made here and never
/// sent anywhere, certified through the API from a CSR, and renewed — with a fresh key — at half its
/// lifetime, retried with backoff while the current one is still valid. Kept in the agent's
/// `identity/` directory: `node.key` (0600), `node.crt` and `bundle.pem` (the trust roots).
actor NodeIdentity {
    let identity: SPIFFEID
    private let directory: String
    private let client: APIClient
    private let logger: Logger
    private let onIssued: @Sendable (MeshCredentials) -> Void
    private(set) var notAfter: Date?
    private var sleeper: Task<Void, Never>?

    /// `issued` receives each new certificate, its key and the trust bundle (for the tunnel's TLS).
    init(identity: SPIFFEID, directory: String, client: APIClient, logger: Logger,
         issued: @escaping @Sendable (MeshCredentials) -> Void = { _ in }) {
        self.identity = identity
        self.directory = directory
        self.client = client
        self.logger = logger
        self.onIssued = issued
    }

    var keyPath: String { (directory as NSString).appendingPathComponent("node.key") }
    var certificatePath: String { (directory as NSString).appendingPathComponent("node.crt") }
    var bundlePath: String { (directory as NSString).appendingPathComponent("bundle.pem") }

    /// Obtains the certificate, then keeps renewing it until cancelled.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let wait: Duration
            do {
                let issuedAt = Date()
                let expiry = try await renew()
                failures = 0
                wait = .seconds(max(1, expiry.timeIntervalSince(issuedAt) / 2))
            } catch {
                failures += 1
                wait = .seconds(min(60, 1 << min(failures - 1, 6)))
                let remaining = notAfter.map { "\(Int($0.timeIntervalSinceNow)) s" } ?? "no certificate yet"
                logger.warning("cannot renew the node certificate; retrying", metadata: [
                    "identity": "\(identity)", "error": "\(error)", "retryIn": "\(wait)", "validFor": "\(remaining)",
                ])
            }
            let sleeper = Task { _ = try? await Task.sleep(for: wait) }
            self.sleeper = sleeper
            await withTaskCancellationHandler { await sleeper.value } onCancel: { sleeper.cancel() }
        }
    }

    /// Renews now rather than at half-life (the signing root changed).
    func renewSoon() {
        sleeper?.cancel()
    }

    /// Rewrites `bundle.pem` (the trust roots changed).
    func writeBundle(_ bundle: [String]) throws {
        try SecureFile.write(Data(bundle.joined().utf8), to: bundlePath, mode: 0o644)
    }

    /// A new key and CSR, certified through the API; the files are replaced atomically (key first).
    @discardableResult
    func renew() async throws -> Date {
        let request = try IdentityRequest(identity: identity)
        let issued = try await client.signCertificate(csrPEM: try request.csrPEM(), identity: identity.description)
        guard let expiry = try? Date(issued.notAfter, strategy: .iso8601) else {
            throw PKIError(code: .invalidArgument, reason: "the API answered a certificate with an unreadable notAfter \"\(issued.notAfter)\"")
        }
        let keyPEM = try request.privateKey.serializeAsPEM().pemString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecureFile.write(Data(keyPEM.utf8), to: keyPath, mode: 0o600)
        try SecureFile.write(Data(issued.certificate.utf8), to: certificatePath, mode: 0o644)
        try SecureFile.write(Data(issued.trustBundle.joined().utf8), to: bundlePath, mode: 0o644)
        notAfter = expiry
        onIssued(MeshCredentials(certificateChainPEM: issued.certificate, privateKeyPEM: keyPEM, trustBundlePEM: issued.trustBundle))
        logger.info("node certificate issued", metadata: ["identity": "\(identity)", "notAfter": "\(issued.notAfter)"])
        return expiry
    }
}
