import Foundation
import Crypto
import SwiftASN1
import X509

/// The requesting side of a workload or node certificate: a fresh P-256 key that stays where it was
/// made, and a CSR for it naming the SPIFFE ID asked for (as a URI SAN in an extension request).
public struct IdentityRequest: Sendable {
    public let identity: SPIFFEID
    public let privateKey: Certificate.PrivateKey
    public let csr: CertificateSigningRequest

    public init(identity: SPIFFEID) throws {
        self.identity = identity
        let key = P256.Signing.PrivateKey()
        privateKey = Certificate.PrivateKey(key)
        do {
            let extensions = try Certificate.Extensions {
                SubjectAlternativeNames([.uniformResourceIdentifier(identity.description)])
            }
            let attributes = try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
            csr = try CertificateSigningRequest(
                version: .v1, subject: DistinguishedName(), privateKey: privateKey, attributes: attributes,
                signatureAlgorithm: .ecdsaWithSHA256)
        } catch {
            throw PKIError(code: .signingFailed, reason: "cannot build a certificate signing request for \(identity) (\(error))")
        }
    }

    /// The CSR as a PEM `CERTIFICATE REQUEST` block, what travels to the CA.
    public func csrPEM() throws -> String {
        try csr.serializeAsPEM().pemString
    }
}

extension CertificateAuthority {
    /// Signs an SVID for `identity` from `csr`: the CSR's signature must verify with the key it carries
    /// (proof that the requester holds the private key); the certificate names only `identity` (URI SAN,
    /// critical, empty subject) and serves both ends of mutual TLS. The caller decides whether the
    /// requester may have `identity`; what the CSR itself asks for is ignored.
    public func issue(
        csr: CertificateSigningRequest, identity: SPIFFEID, validity: TimeInterval,
        usage: LeafUsage = [.serverAuth, .clientAuth], now: Date = Date()
    ) throws -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw PKIError.invalid("the certificate signing request's signature does not verify with the key it carries")
        }
        return try issue(publicKey: csr.publicKey, commonName: nil, uris: [identity.description], validity: validity,
                         usage: usage, now: now)
    }
}
