import Foundation
import Testing
import WeftCore
import WeftPKI
import X509
@testable import WeftControlPlane

@Suite("Certificate signer") struct CertificateSignerTests {
    let now = Date(timeIntervalSince1970: 1_767_225_600)

    func signer() throws -> CertificateSigner {
        CertificateSigner(authority: try CertificateAuthority.create(now: now), trustDomain: "weft.internal", validity: 3600)
    }

    func csr(_ identity: String) throws -> String {
        try IdentityRequest(identity: try SPIFFEID(parsing: identity)).csrPEM()
    }

    @Test func nodeAndWorkloadIdentitiesAreSignedForTheLifetime() throws {
        let signer = try signer()
        for identity in ["spiffe://weft.internal/node/n1", "spiffe://weft.internal/ns/shop/sa/cart"] {
            let issued = try signer.sign(CertificateRequest(csr: try csr(identity), identity: identity), now: now)
            let certificate = try Certificate(pemEncoded: issued.certificate)
            #expect(SPIFFEID(certificate: certificate)?.description == identity)
            #expect(issued.trustBundle == signer.status.bundle && issued.trustBundle.count == 1)
            #expect(certificate.notValidAfter == now + 3600)
            #expect(issued.notAfter == (now + 3600).formatted(.iso8601))
        }
    }

    @Test(arguments: [
        ("spiffe://weft.internal/node/n1", "not pem", 400, "csr"),
        ("https://weft.internal/node/n1", nil, 422, "identity"),
        ("spiffe://other.example/node/n1", nil, 422, "trust domain"),
        ("spiffe://weft.internal/ns/shop", nil, 422, "neither a node"),
        ("spiffe://weft.internal/node/n1/extra", nil, 422, "neither a node"),
    ] as [(String, String?, Int, String)])
    func badRequestsAreRefusedWithTheField(identity: String, csrText: String?, code: Int, message: String) throws {
        let signer = try signer()
        let request = CertificateRequest(csr: try csrText ?? csr("spiffe://weft.internal/node/n1"), identity: identity)
        #expect {
            try signer.sign(request, now: now)
        } throws: { error in
            guard let failure = error as? APIFailure else { return false }
            return failure.code == code && failure.message.contains(message)
        }
    }
}
