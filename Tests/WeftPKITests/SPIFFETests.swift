import Crypto
import Foundation
import Testing
import X509

@testable import WeftPKI

@Suite("SPIFFE identities") struct SPIFFETests {
    @Test(arguments: [
        "spiffe://weft.internal/ns/default/sa/web",
        "spiffe://weft.internal/node/node-1",
        "spiffe://example.org/a_b/C.d-e",
    ])
    func validIDsParseAndPrintBack(text: String) throws {
        #expect(try SPIFFEID(parsing: text).description == text)
    }

    @Test(arguments: [
        ("https://weft.internal/ns/a", "must start with spiffe://"),
        ("spiffe:///ns/a", "trust domain is empty"),
        ("spiffe://Weft.internal/ns/a", "lower-case"),
        ("spiffe://weft.internal:8443/ns/a", "lower-case"),
        ("spiffe://weft.internal", "path is empty"),
        ("spiffe://weft.internal/", "segment is empty"),
        ("spiffe://weft.internal/ns//a", "segment is empty"),
        ("spiffe://weft.internal/ns/../a", "'.' or '..'"),
        ("spiffe://weft.internal/ns/a?x=1", "letters, digits"),
        ("spiffe://weft.internal/ns/a#f", "letters, digits"),
    ])
    func invalidIDsAreRefusedWithTheReason(text: String, reason: String) {
        #expect {
            try SPIFFEID(parsing: text)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains(text)
        }
    }

    @Test func nodeAndWorkloadIDs() throws {
        #expect(try SPIFFEID.node("n1", trustDomain: "weft.internal").description == "spiffe://weft.internal/node/n1")
        #expect(try SPIFFEID.workload(namespace: "shop", serviceAccount: "cart", trustDomain: "weft.internal").description
            == "spiffe://weft.internal/ns/shop/sa/cart")
    }

    @Test func aCSRBecomesAnSVIDForTheGrantedIdentityOnly() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let asked = try SPIFFEID.workload(namespace: "default", serviceAccount: "web", trustDomain: "weft.internal")
        let request = try IdentityRequest(identity: asked)
        // The CA decides the identity; here it grants a different one than the CSR asks for.
        let granted = try SPIFFEID.workload(namespace: "default", serviceAccount: "api", trustDomain: "weft.internal")
        let svid = try ca.issue(csr: request.csr, identity: granted, validity: 86_400, now: referenceNow)
        #expect(SPIFFEID(certificate: svid) == granted)
        #expect(svid.publicKey == request.privateKey.publicKey)
        #expect(svid.subject == DistinguishedName())
        #expect(try svid.extensions.subjectAlternativeNames == SubjectAlternativeNames([.uniformResourceIdentifier(granted.description)]))
        #expect(svid.extensions[oid: .X509ExtensionID.subjectAlternativeName]?.critical == true)
        #expect(try svid.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth, .clientAuth]))
        #expect(svid.notValidAfter == referenceNow + 86_400)
        #expect(ca.isIssuer(of: svid))
    }

    @Test func aCSRWhoseSignatureDoesNotMatchItsKeyIsRefused() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let id = try SPIFFEID.node("n1", trustDomain: "weft.internal")
        let genuine = try IdentityRequest(identity: id).csr
        let other = try IdentityRequest(identity: id).csr
        // The info (and key) of one request with the signature of another.
        let forged = try CertificateSigningRequest(
            version: genuine.version, subject: genuine.subject, publicKey: genuine.publicKey, attributes: genuine.attributes,
            signatureAlgorithm: genuine.signatureAlgorithm, signature: other.signature)
        #expect {
            try ca.issue(csr: forged, identity: id, validity: 3600, now: referenceNow)
        } throws: { error in
            "\(error)".contains("signature does not verify")
        }
    }

    @Test func opensslVerifiesTheSVIDAndShowsItsSPIFFEID() async throws {
        guard let openssl = executableOnPath("openssl") else {
            print("skipping: openssl is not on PATH")
            return
        }
        try await withTemporaryDirectory { dir in
            // Real clock: openssl verifies against the current time.
            let ca = try CertificateAuthority.create()
            let id = try SPIFFEID.workload(namespace: "default", serviceAccount: "web", trustDomain: "weft.internal")
            let request = try IdentityRequest(identity: id)
            let csrPath = dir + "/svid.csr"
            try request.csrPEM().write(toFile: csrPath, atomically: true, encoding: .utf8)
            let checkCSR = try run(openssl, ["req", "-in", csrPath, "-noout", "-verify"])
            #expect(checkCSR.status == 0, "\(checkCSR.output)")
            let svid = try ca.issue(csr: request.csr, identity: id, validity: 3600)
            let caPath = dir + "/ca.pem"
            let svidPath = dir + "/svid.pem"
            try ca.certificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)
            try svid.serializeAsPEM().pemString.write(toFile: svidPath, atomically: true, encoding: .utf8)
            let verify = try run(openssl, ["verify", "-CAfile", caPath, svidPath])
            #expect(verify.status == 0 && verify.output.contains("OK"), "\(verify.output)")
            let text = try run(openssl, ["x509", "-in", svidPath, "-noout", "-text"])
            #expect(text.output.contains("URI:spiffe://weft.internal/ns/default/sa/web"), "\(text.output)")
            // A certificate of another CA does not verify against this one.
            let foreign = try CertificateAuthority.create().issue(csr: request.csr, identity: id, validity: 3600)
            try foreign.serializeAsPEM().pemString.write(toFile: svidPath, atomically: true, encoding: .utf8)
            #expect(try run(openssl, ["verify", "-CAfile", caPath, svidPath]).status != 0)
        }
    }
}
