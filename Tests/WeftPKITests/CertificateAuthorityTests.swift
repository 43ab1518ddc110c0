import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import WeftPKI

@Suite struct CertificateAuthorityTests {
    @Test func caCertificateFields() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let certificate = ca.certificate
        #expect(certificate.version == .v3)
        #expect(certificate.subject == certificate.issuer)
        #expect(certificate.subject.description.contains("CN=weft-cluster-ca"))
        #expect(certificate.subject.description.contains("O=weft"))
        #expect(P256.Signing.PublicKey(certificate.publicKey) != nil)
        #expect(certificate.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(certificate.publicKey.isValidSignature(certificate.signature, for: certificate))

        let basicConstraints = try #require(certificate.extensions[oid: .X509ExtensionID.basicConstraints])
        #expect(basicConstraints.critical)
        #expect(try BasicConstraints(basicConstraints) == .isCertificateAuthority(maxPathLength: nil))

        let keyUsageExtension = try #require(certificate.extensions[oid: .X509ExtensionID.keyUsage])
        #expect(keyUsageExtension.critical)
        let keyUsage = try KeyUsage(keyUsageExtension)
        #expect(keyUsage.keyCertSign && keyUsage.cRLSign)
        #expect(!keyUsage.digitalSignature)

        let ski = try #require(try certificate.extensions.subjectKeyIdentifier)
        #expect(ski == SubjectKeyIdentifier(hash: certificate.publicKey))

        // 10 years, backdated a few minutes for clock skew.
        #expect(certificate.notValidBefore <= referenceNow)
        #expect(certificate.notValidBefore >= referenceNow - 600)
        #expect(certificate.notValidAfter >= referenceNow + 3650 * day)
        #expect(certificate.notValidAfter <= referenceNow + 3653 * day)
    }

    @Test func serialsAreRandomAndPositiveInDER() throws {
        for _ in 0..<16 {
            let a = try CertificateAuthority.create(now: referenceNow).certificate
            let b = try CertificateAuthority.create(now: referenceNow).certificate
            #expect(a.serialNumber != b.serialNumber)
            #expect(a.serialNumber.bytes.count >= 8 && a.serialNumber.bytes.count <= 20)
            // The DER INTEGER must be positive (RFC 5280 4.1.2.2), whatever the top bit of the random bytes.
            let content = try derSerialContent(of: a)
            #expect(content.first.map { $0 < 0x80 } == true)
            #expect(content.count <= 21)
        }
    }

    /// The content octets of the serialNumber INTEGER in the certificate's DER encoding.
    func derSerialContent(of certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let root = try DER.parse(serializer.serializedBytes)
        guard case .constructed(let certificateNodes) = root.content,
            let tbs = certificateNodes.first(where: { _ in true }),
            case .constructed(let tbsNodes) = tbs.content,
            let serial = tbsNodes.first(where: { $0.identifier == .integer }),
            case .primitive(let bytes) = serial.content
        else {
            Issue.record("unexpected certificate structure")
            return []
        }
        return Array(bytes)
    }

    @Test func leafFieldsForServerUsage() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let identity = try ca.issueIdentity(
            commonName: "api", dnsNames: ["localhost", "Node-1"], ipAddresses: ["127.0.0.1", "[::1]"],
            validity: 365 * day, usage: .serverAuth, now: referenceNow)
        let leaf = identity.certificate

        #expect(leaf.issuer == ca.certificate.subject)
        #expect(ca.isIssuer(of: leaf))
        #expect(leaf.serialNumber != ca.certificate.serialNumber)
        #expect(P256.Signing.PublicKey(leaf.publicKey) != nil)

        let eku = try #require(try leaf.extensions.extendedKeyUsage)
        #expect(Array(eku) == [.serverAuth])

        let basicConstraints = try #require(leaf.extensions[oid: .X509ExtensionID.basicConstraints])
        #expect(basicConstraints.critical)
        #expect(try BasicConstraints(basicConstraints) == .notCertificateAuthority)
        let keyUsage = try #require(try leaf.extensions.keyUsage)
        #expect(keyUsage.digitalSignature && !keyUsage.keyCertSign)

        let aki = try #require(try leaf.extensions.authorityKeyIdentifier)
        #expect(aki.keyIdentifier == (try ca.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier)
        #expect(try leaf.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: leaf.publicKey))

        let sanExtension = try #require(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName])
        #expect(!sanExtension.critical)
        let sans = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(sans.contains(.dnsName("localhost")))
        #expect(sans.contains(.dnsName("node-1")))
        #expect(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))))

        #expect(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) > 364 * day)
        #expect(leaf.notValidAfter <= referenceNow + 365 * day)

        // The PEM text round-trips and the key belongs to the certificate.
        #expect(try Certificate(pemEncoded: identity.certificatePEM) == leaf)
        #expect(try Certificate.PrivateKey(pemEncoded: identity.privateKeyPEM).publicKey == leaf.publicKey)
    }

    @Test func leafUsageBecomesExtendedKeyUsage() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let client = try ca.issueIdentity(commonName: "c", validity: day, usage: .clientAuth, now: referenceNow)
        #expect(Array(try #require(try client.certificate.extensions.extendedKeyUsage)) == [.clientAuth])
        let both = try ca.issueIdentity(
            commonName: "b", validity: day, usage: [.serverAuth, .clientAuth], now: referenceNow)
        #expect(Array(try #require(try both.certificate.extensions.extendedKeyUsage)) == [.serverAuth, .clientAuth])
    }

    @Test func issueForAGivenPublicKeyWithSPIFFEURI() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let workloadKey = P256.Signing.PrivateKey()
        let spiffeID = "spiffe://weft.internal/ns/default/sa/cart"
        let leaf = try ca.issue(
            publicKey: Certificate.PublicKey(workloadKey.publicKey), commonName: nil, uris: [spiffeID],
            validity: 3600, usage: [.serverAuth, .clientAuth], now: referenceNow)

        #expect(leaf.publicKey == Certificate.PublicKey(workloadKey.publicKey))
        #expect(leaf.subject == DistinguishedName())
        let sans = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(Array(sans) == [.uniformResourceIdentifier(spiffeID)])
        // An empty subject requires a critical SAN extension (RFC 5280 4.2.1.6).
        #expect(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName]?.critical == true)
        #expect(leaf.notValidAfter <= referenceNow + 3600)
        #expect(ca.isIssuer(of: leaf))
    }

    @Test func leafLifetimeIsCappedAtCAExpiry() throws {
        let ca = try CertificateAuthority.create(validity: 10 * day, now: referenceNow)
        let leaf = try ca.issueIdentity(commonName: "x", validity: 365 * day, usage: .serverAuth, now: referenceNow)
        #expect(leaf.certificate.notValidAfter == ca.certificate.notValidAfter)
        #expect(throws: PKIError.self) {
            try ca.issueIdentity(commonName: "x", validity: day, usage: .serverAuth, now: referenceNow + 11 * day)
        }
    }

    @Test(arguments: [
        ([""], [String](), [String]()),
        (["bad name"], [], []),
        (["127.0.0.1"], [], []),
        ([], ["localhost"], []),
        ([], ["300.1.1.1"], []),
        ([], [], ["not a uri"]),
        ([], [], ["no-scheme"]),
    ])
    func invalidNamesAreRejected(dnsNames: [String], ipAddresses: [String], uris: [String]) throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let error = #expect(throws: PKIError.self) {
            try ca.issueIdentity(
                commonName: "x", dnsNames: dnsNames, ipAddresses: ipAddresses, uris: uris, validity: day,
                usage: .serverAuth, now: referenceNow)
        }
        #expect(error?.code == .invalidArgument)
    }

    @Test func emptyUsageAndNonPositiveValidityAreRejected() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        #expect(throws: PKIError.self) {
            try ca.issueIdentity(commonName: "x", validity: day, usage: [], now: referenceNow)
        }
        #expect(throws: PKIError.self) {
            try ca.issueIdentity(commonName: "x", validity: 0, usage: .serverAuth, now: referenceNow)
        }
        #expect(throws: PKIError.self) {
            try ca.issueIdentity(commonName: nil, validity: day, usage: .serverAuth, now: referenceNow)
        }
    }

    @Test func writeAndLoadRoundTrip() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(now: referenceNow)
            try ca.write(certificatePath: dir + "/ca.crt", keyPath: dir + "/ca.key")
            #expect(try SecureFile.mode(of: dir + "/ca.key") == 0o600)
            #expect(try SecureFile.mode(of: dir + "/ca.crt") == 0o644)
            let loaded = try CertificateAuthority.load(certificatePath: dir + "/ca.crt", keyPath: dir + "/ca.key")
            #expect(loaded.certificate == ca.certificate)
            #expect(loaded.certificatePEM == ca.certificatePEM)
            // The loaded key signs certificates that the original CA certificate verifies.
            let leaf = try loaded.issueIdentity(commonName: "x", validity: day, usage: .serverAuth, now: referenceNow)
            #expect(ca.isIssuer(of: leaf.certificate))
        }
    }

    @Test func loadingANonCACertificateFails() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(now: referenceNow)
            let leaf = try ca.issueIdentity(commonName: "x", validity: day, usage: .serverAuth, now: referenceNow)
            try SecureFile.write(Data(leaf.certificatePEM.utf8), to: dir + "/leaf.crt", mode: 0o644)
            try SecureFile.write(Data(leaf.privateKeyPEM.utf8), to: dir + "/leaf.key", mode: 0o600)
            let error = #expect(throws: PKIError.self) {
                try CertificateAuthority.load(certificatePath: dir + "/leaf.crt", keyPath: dir + "/leaf.key")
            }
            #expect(error?.code == .corruptFile)
            #expect(error?.path == dir + "/leaf.crt")
        }
    }

    @Test func corruptKeyFileNamesTheFile() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(now: referenceNow)
            try ca.write(certificatePath: dir + "/ca.crt", keyPath: dir + "/ca.key")
            try SecureFile.write(Data("not a key\n".utf8), to: dir + "/ca.key", mode: 0o600)
            let error = #expect(throws: PKIError.self) {
                try CertificateAuthority.load(certificatePath: dir + "/ca.crt", keyPath: dir + "/ca.key")
            }
            #expect(error?.code == .corruptFile)
            #expect(error?.path == dir + "/ca.key")
            #expect(error?.description.contains(dir + "/ca.key") == true)
        }
    }
}
