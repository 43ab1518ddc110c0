import Foundation
import WeftCore
import WeftPKI
import X509

/// Signs SVIDs for the API: checks the CSR and the requested SPIFFE ID (it must be in this cluster's
/// trust domain and name a node or a workload), then has the active mesh root sign it for `validity`.
public struct CertificateSigner: Sendable {
    /// The mesh roots, when they can rotate; nil signs with `fixed` alone.
    public let authorities: MeshAuthorities?
    private let fixed: CertificateAuthority?
    public let trustDomain: String
    public let validity: TimeInterval

    /// Signs with the active root of `authorities`, and answers their whole bundle.
    public init(authorities: MeshAuthorities, trustDomain: String, validity: TimeInterval) {
        self.authorities = authorities
        self.fixed = nil
        self.trustDomain = trustDomain
        self.validity = validity
    }

    /// Signs with `authority` alone.
    public init(authority: CertificateAuthority, trustDomain: String, validity: TimeInterval) {
        self.authorities = nil
        self.fixed = authority
        self.trustDomain = trustDomain
        self.validity = validity
    }

    private var current: (signer: CertificateAuthority, bundle: [String]) {
        if let authorities { return (authorities.active, authorities.bundle) }
        return (fixed!, [fixed!.certificatePEM])
    }

    /// The roots and bundle, for `GET /api/v1/ca`.
    public var status: TrustBundleStatus {
        guard let authorities else {
            let root = MeshAuthorities.describe(fixed!)
            return TrustBundleStatus(roots: [TrustRoot(id: "cluster", state: "active", fingerprint: root.fingerprint, notAfter: root.notAfter)],
                                     bundle: [fixed!.certificatePEM])
        }
        return TrustBundleStatus(
            roots: authorities.all.map {
                TrustRoot(id: $0.id, state: $0.state.rawValue, fingerprint: $0.fingerprint,
                          notAfter: $0.authority.certificate.notValidAfter.formatted(.iso8601))
            },
            bundle: authorities.bundle)
    }

    public func sign(_ request: CertificateRequest, now: Date = Date()) throws -> IssuedCertificate {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: request.csr)
        } catch {
            throw APIFailure(code: 400, message: "csr: not a PEM certificate signing request (\(error))",
                             details: [InvalidField(path: "csr", message: "not a PEM CERTIFICATE REQUEST")])
        }
        let identity: SPIFFEID
        do {
            identity = try SPIFFEID(parsing: request.identity)
        } catch {
            throw APIFailure(code: 422, message: "identity: \(error)", details: [InvalidField(path: "identity", message: "\(error)")])
        }
        guard identity.trustDomain == trustDomain else {
            throw APIFailure(code: 422, message: "identity: trust domain \"\(identity.trustDomain)\" is not this cluster's (\"\(trustDomain)\")",
                             details: [InvalidField(path: "identity", message: "use spiffe://\(trustDomain)/...")])
        }
        let segments = identity.path.split(separator: "/")
        let isNode = segments.count == 2 && segments[0] == "node"
        let isWorkload = segments.count == 4 && segments[0] == "ns" && segments[2] == "sa"
        guard isNode || isWorkload else {
            throw APIFailure(code: 422, message: "identity: \(identity) names neither a node (/node/<name>) nor a workload (/ns/<namespace>/sa/<account>)",
                             details: [InvalidField(path: "identity", message: "use /node/<name> or /ns/<namespace>/sa/<account>")])
        }
        let (authority, bundle) = current
        let certificate: Certificate
        do {
            certificate = try authority.issue(csr: csr, identity: identity, validity: validity, now: now)
        } catch let error as PKIError where error.code == .invalidArgument {
            throw APIFailure(code: 400, message: "csr: \(error)", details: [InvalidField(path: "csr", message: "\(error)")])
        }
        return IssuedCertificate(
            certificate: try certificate.serializeAsPEM().pemString,
            trustBundle: bundle,
            notAfter: certificate.notValidAfter.formatted(.iso8601))
    }
}
