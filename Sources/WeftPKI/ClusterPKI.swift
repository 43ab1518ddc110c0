import Foundation
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The PKI state of a `weft server` data directory: the cluster CA, the API server's serving certificate
/// and the bearer token, created on first start and reused afterwards.
///
/// Layout of `directory` (created 0700 if absent): `ca.crt` 0644, `ca.key` 0600, `server.crt` 0644,
/// `server.key` 0600, `token` 0600, and an empty `.lock` used to serialise concurrent starts.
public struct ClusterPKI: Sendable {
    /// Lifetime of a newly issued serving certificate: one year.
    public static let servingValidity: TimeInterval = 365 * 86_400
    /// A serving certificate expiring within this window (30 days) is reissued at start.
    public static let renewalWindow: TimeInterval = 30 * 86_400

    /// The directory holding the files.
    public let directory: String
    /// The cluster CA.
    public let ca: CertificateAuthority
    /// The API server's serving certificate and key (PEM), as written to ``serverCertificatePath`` and ``serverKeyPath``.
    public let serving: IssuedIdentity
    /// The bearer token clients present to the API server.
    public let token: String
    /// Why the serving certificate was (re)issued by this call, or nil if the one on disk was reused.
    public let servingIssueReason: String?
    /// Whether this call created the cluster CA (first start).
    public let createdAuthority: Bool

    /// The CA certificate as PEM, what clients and agents need to trust the API server.
    public var caCertificatePEM: String { ca.certificatePEM }
    /// Path of the CA certificate, `<directory>/ca.crt`.
    public var caCertificatePath: String { Self.path(directory, "ca.crt") }
    /// Path of the CA private key, `<directory>/ca.key`.
    public var caKeyPath: String { Self.path(directory, "ca.key") }
    /// Path of the serving certificate, `<directory>/server.crt`.
    public var serverCertificatePath: String { Self.path(directory, "server.crt") }
    /// Path of the serving certificate's private key, `<directory>/server.key`.
    public var serverKeyPath: String { Self.path(directory, "server.key") }
    /// Path of the bearer token, `<directory>/token`.
    public var tokenPath: String { Self.path(directory, "token") }

    /// Loads the PKI from `directory`, creating what is missing.
    ///
    /// The CA is created if neither `ca.crt` nor `ca.key` exists; if one of them is missing, unreadable or
    /// corrupt this throws (recreating the CA would silently invalidate everything issued from it). The
    /// serving certificate is reused if it was issued by this CA, is valid at `now` for at least
    /// ``renewalWindow`` more and its SANs include every name in `servingNames` and `servingIPs`; otherwise
    /// (including when its files are missing or unreadable) it is reissued for those names. Entries of
    /// `servingNames` that are IP literals are treated as IP addresses. Key and token files readable by
    /// group or others are tightened to 0600.
    public static func loadOrCreate(
        directory: String,
        servingNames: [String],
        servingIPs: [String],
        now: Date = Date()
    ) throws -> ClusterPKI {
        try SecureFile.createDirectory(directory, mode: 0o700)
        let lock = try DirectoryLock(path: path(directory, ".lock"))
        defer { lock.release() }

        let caCertificatePath = path(directory, "ca.crt")
        let caKeyPath = path(directory, "ca.key")
        let ca: CertificateAuthority
        let createdAuthority: Bool
        switch (SecureFile.exists(caCertificatePath), SecureFile.exists(caKeyPath)) {
        case (false, false):
            ca = try CertificateAuthority.create(now: now)
            try ca.write(certificatePath: caCertificatePath, keyPath: caKeyPath)
            createdAuthority = true
        case (true, true):
            ca = try CertificateAuthority.load(certificatePath: caCertificatePath, keyPath: caKeyPath)
            createdAuthority = false
        case (let hasCertificate, _):
            let present = hasCertificate ? caCertificatePath : caKeyPath
            let missing = hasCertificate ? caKeyPath : caCertificatePath
            throw PKIError(
                code: .missingFile, path: missing,
                reason: "missing, although \(present) exists",
                remedy: "restore it from a backup, or delete \(directory) to create a new cluster CA "
                    + "(every certificate and token issued so far then stops working)")
        }
        guard now < ca.certificate.notValidAfter else {
            throw PKIError(
                code: .expired, path: caCertificatePath,
                reason: "the cluster CA expired at \(ca.certificate.notValidAfter)",
                remedy: "delete \(directory) to create a new cluster CA and redistribute its certificate")
        }

        var names = servingNames
        var ips = servingIPs
        names.removeAll { name in
            guard SubjectAltNames.ipAddressBytes(name) != nil else { return false }
            ips.append(name)
            return true
        }
        let wanted = try SubjectAltNames(dnsNames: names, ipAddresses: ips, uris: [])
        guard !wanted.isEmpty else {
            throw PKIError.invalid("the serving certificate needs at least one DNS name or IP address")
        }

        let serverCertificatePath = path(directory, "server.crt")
        let serverKeyPath = path(directory, "server.key")
        let serving: IssuedIdentity
        let reason: String?
        switch loadServing(certificatePath: serverCertificatePath, keyPath: serverKeyPath, ca: ca, wanted: wanted, now: now) {
        case .success(let existing):
            serving = existing
            reason = nil
        case .failure(let why):
            serving = try ca.issueIdentity(
                commonName: "weft-api-server",
                dnsNames: wanted.dnsNames,
                ipAddresses: ips,
                validity: servingValidity,
                usage: .serverAuth,
                now: now)
            try SecureFile.write(Data(serving.privateKeyPEM.utf8), to: serverKeyPath, mode: 0o600)
            try SecureFile.write(Data(serving.certificatePEM.utf8), to: serverCertificatePath, mode: 0o644)
            reason = why.reason
        }

        let token = try BearerToken.loadOrCreate(path: path(directory, "token"))
        return ClusterPKI(
            directory: directory, ca: ca, serving: serving, token: token,
            servingIssueReason: reason, createdAuthority: createdAuthority)
    }

    private struct ReissueReason: Error {
        var reason: String
    }

    /// The serving identity on disk if it can be reused, or why not.
    private static func loadServing(
        certificatePath: String, keyPath: String, ca: CertificateAuthority, wanted: SubjectAltNames, now: Date
    ) -> Result<IssuedIdentity, ReissueReason> {
        guard SecureFile.exists(certificatePath), SecureFile.exists(keyPath) else {
            return .failure(ReissueReason(reason: "no serving certificate on disk"))
        }
        do {
            try SecureFile.restrictToOwner(keyPath)
            let certificatePEM = try CertificateAuthority.readText(certificatePath)
            let keyPEM = try CertificateAuthority.readText(keyPath)
            let certificate = try Certificate(pemEncoded: certificatePEM)
            let key = try Certificate.PrivateKey(pemEncoded: keyPEM)
            guard key.publicKey == certificate.publicKey else {
                return .failure(ReissueReason(reason: "serving key does not match the serving certificate"))
            }
            guard ca.isIssuer(of: certificate) else {
                return .failure(ReissueReason(reason: "serving certificate was not issued by the cluster CA"))
            }
            guard certificate.notValidBefore <= now else {
                return .failure(ReissueReason(reason: "serving certificate is not valid yet"))
            }
            guard certificate.notValidAfter >= now + renewalWindow else {
                return .failure(ReissueReason(reason: "serving certificate expires at \(certificate.notValidAfter)"))
            }
            guard try SubjectAltNames(of: certificate).covers(wanted) else {
                return .failure(ReissueReason(reason: "serving certificate does not cover the requested names"))
            }
            return .success(IssuedIdentity(certificate: certificate, certificatePEM: certificatePEM, privateKeyPEM: keyPEM))
        } catch {
            return .failure(ReissueReason(reason: "serving certificate or key is unreadable (\(error))"))
        }
    }

    private static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

/// An exclusive `flock` on a file, so two processes starting on one data directory do not both create a CA.
private struct DirectoryLock {
    private let fd: Int32

    init(path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SecureFile.posixError("cannot open lock file", path: path) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let error = SecureFile.posixError("cannot lock the PKI directory", path: path)
            close(fd)
            throw error
        }
        self.fd = fd
    }

    func release() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
