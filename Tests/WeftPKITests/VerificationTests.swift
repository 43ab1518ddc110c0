import Crypto
import Foundation
import Testing
import X509

@testable import WeftPKI

/// The serving certificate must verify the way a TLS client will check it: a chain to the cluster CA and a
/// SAN matching the host or IP dialled.
@Suite struct VerificationTests {
    func validate(
        _ leaf: Certificate, roots: [Certificate], hostname: String?, ip: String?, at time: Date
    ) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(validationTime: time)
            ServerIdentityPolicy(serverHostname: hostname, serverIP: ip)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        if case .validCertificate = result { return true }
        return false
    }

    @Test(arguments: [("localhost", nil), (nil, "127.0.0.1"), (nil, "::1"), ("node-1", nil)] as [(String?, String?)])
    func servingCertificateChainsToClusterCA(hostname: String?, ip: String?) async throws {
        try await withTemporaryDirectory { dir in
            let pki = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: ["localhost", "node-1"], servingIPs: ["127.0.0.1", "::1"], now: referenceNow)
            // Check what was written to disk, not only the in-memory value.
            let leaf = try Certificate(pemEncoded: String(contentsOfFile: pki.serverCertificatePath, encoding: .utf8))
            let root = try Certificate(pemEncoded: String(contentsOfFile: pki.caCertificatePath, encoding: .utf8))
            #expect(await validate(leaf, roots: [root], hostname: hostname, ip: ip, at: referenceNow + day))
        }
    }

    @Test func servingCertificateDoesNotVerifyForOtherNames() async throws {
        try await withTemporaryDirectory { dir in
            let pki = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: ["localhost"], servingIPs: ["127.0.0.1"], now: referenceNow)
            let leaf = pki.serving.certificate
            let root = pki.ca.certificate
            #expect(!(await validate(leaf, roots: [root], hostname: "example.com", ip: nil, at: referenceNow)))
            #expect(!(await validate(leaf, roots: [root], hostname: nil, ip: "127.0.0.2", at: referenceNow)))
        }
    }

    @Test func certificateFromAnotherCADoesNotVerify() async throws {
        let ours = try CertificateAuthority.create(now: referenceNow)
        let theirs = try CertificateAuthority.create(now: referenceNow)
        let foreign = try theirs.issueIdentity(
            commonName: "localhost", dnsNames: ["localhost"], validity: 365 * day, usage: .serverAuth, now: referenceNow)
        #expect(!(await validate(foreign.certificate, roots: [ours.certificate], hostname: "localhost", ip: nil, at: referenceNow)))
        #expect(await validate(foreign.certificate, roots: [theirs.certificate], hostname: "localhost", ip: nil, at: referenceNow))
        #expect(!ours.isIssuer(of: foreign.certificate))
        #expect(theirs.isIssuer(of: foreign.certificate))
    }

    @Test func expiredServingCertificateDoesNotVerify() async throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let leaf = try ca.issue(
            publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
            commonName: "localhost", dnsNames: ["localhost"], validity: day, usage: .serverAuth, now: referenceNow)
        #expect(await validate(leaf, roots: [ca.certificate], hostname: "localhost", ip: nil, at: referenceNow + 3600))
        #expect(!(await validate(leaf, roots: [ca.certificate], hostname: "localhost", ip: nil, at: referenceNow + 2 * day)))
    }

    @Test func opensslAcceptsTheChain() async throws {
        guard let openssl = executableOnPath("openssl") else {
            print("skipping: openssl is not on PATH")
            return
        }
        try await withTemporaryDirectory { dir in
            // Real clock: openssl verifies against the current time.
            let pki = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: ["localhost"], servingIPs: ["127.0.0.1"])
            let verify = try run(openssl, ["verify", "-CAfile", pki.caCertificatePath, pki.serverCertificatePath])
            #expect(verify.status == 0, "openssl verify: \(verify.output)")
            #expect(verify.output.contains("OK"))

            let named = try run(openssl, [
                "verify", "-CAfile", pki.caCertificatePath, "-purpose", "sslserver",
                "-verify_hostname", "localhost", "-verify_ip", "127.0.0.1", pki.serverCertificatePath,
            ])
            #expect(named.status == 0, "openssl verify with name: \(named.output)")

            // openssl can read our keys and they match the certificates.
            for (certificate, key) in [(pki.caCertificatePath, pki.caKeyPath), (pki.serverCertificatePath, pki.serverKeyPath)] {
                let fromCertificate = try run(openssl, ["x509", "-in", certificate, "-noout", "-pubkey"])
                let fromKey = try run(openssl, ["pkey", "-in", key, "-pubout"])
                #expect(fromKey.status == 0, "openssl pkey: \(fromKey.output)")
                #expect(fromCertificate.output == fromKey.output)
            }

            let other = try CertificateAuthority.create()
            try other.write(certificatePath: dir + "/other-ca.crt", keyPath: dir + "/other-ca.key")
            let wrong = try run(openssl, ["verify", "-CAfile", dir + "/other-ca.crt", pki.serverCertificatePath])
            #expect(wrong.status != 0)
        }
    }
}
