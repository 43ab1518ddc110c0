import Foundation
import Testing
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import WeftPKI

@Suite struct ClusterPKITests {
    let names = ["localhost", "node-1"]
    let ips = ["127.0.0.1", "::1"]

    @Test func firstStartCreatesFilesWithOwnerOnlySecrets() async throws {
        try await withTemporaryDirectory { base in
            let dir = base + "/pki"
            let pki = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            #expect(pki.createdAuthority)
            #expect(pki.servingIssueReason != nil)
            #expect(try SecureFile.mode(of: dir) == 0o700)
            #expect(try SecureFile.mode(of: pki.caKeyPath) == 0o600)
            #expect(try SecureFile.mode(of: pki.caCertificatePath) == 0o644)
            #expect(try SecureFile.mode(of: pki.serverKeyPath) == 0o600)
            #expect(try SecureFile.mode(of: pki.serverCertificatePath) == 0o644)
            #expect(try SecureFile.mode(of: pki.tokenPath) == 0o600)
            #expect(try String(contentsOfFile: pki.tokenPath, encoding: .utf8) == pki.token)
            #expect(pki.token.count == 64)
            #expect(pki.token.allSatisfy { $0.isHexDigit })
            #expect(try String(contentsOfFile: pki.caCertificatePath, encoding: .utf8) == pki.caCertificatePEM)
            #expect(try String(contentsOfFile: pki.serverCertificatePath, encoding: .utf8) == pki.serving.certificatePEM)
            // No temporary files are left behind by the atomic writes.
            let entries = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            #expect(entries == [".lock", "ca.crt", "ca.key", "server.crt", "server.key", "token"])
        }
    }

    @Test func secondStartReusesEverythingByteForByte() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let paths = [first.caCertificatePath, first.caKeyPath, first.serverCertificatePath, first.serverKeyPath, first.tokenPath]
            let before = try paths.map(fileBytes)

            let second = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: names, servingIPs: ips, now: referenceNow + 100 * day)
            #expect(!second.createdAuthority)
            #expect(second.servingIssueReason == nil)
            #expect(second.ca.certificate == first.ca.certificate)
            #expect(second.serving.certificate == first.serving.certificate)
            #expect(second.serving.privateKeyPEM == first.serving.privateKeyPEM)
            #expect(second.token == first.token)
            #expect(try paths.map(fileBytes) == before)
        }
    }

    @Test func subsetOfNamesIsStillCovered() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let second = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: ["LOCALHOST"], servingIPs: ["127.0.0.1"], now: referenceNow)
            #expect(second.servingIssueReason == nil)
            #expect(second.serving.certificate == first.serving.certificate)
        }
    }

    @Test func newNameOrIPCausesReissueKeepingCAAndToken() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let renamed = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: names + ["api.example.test"], servingIPs: ips, now: referenceNow)
            #expect(renamed.servingIssueReason != nil)
            #expect(renamed.serving.certificate != first.serving.certificate)
            #expect(renamed.ca.certificate == first.ca.certificate)
            #expect(renamed.token == first.token)
            #expect(try SubjectAltNames(of: renamed.serving.certificate).dnsNames.contains("api.example.test"))

            let moved = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: names, servingIPs: ips + ["10.1.2.3"], now: referenceNow)
            #expect(moved.servingIssueReason != nil)
            #expect(moved.serving.certificate != renamed.serving.certificate)
            // The new certificate is what is on disk now.
            #expect(try String(contentsOfFile: moved.serverCertificatePath, encoding: .utf8) == moved.serving.certificatePEM)
        }
    }

    @Test func ipLiteralAmongNamesBecomesAnIPSAN() async throws {
        try await withTemporaryDirectory { dir in
            let pki = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: ["localhost", "192.168.1.20"], servingIPs: [], now: referenceNow)
            let sans = try SubjectAltNames(of: pki.serving.certificate)
            #expect(sans.dnsNames == ["localhost"])
            #expect(sans.ipAddresses == [[192, 168, 1, 20]])
        }
    }

    @Test func nearExpiryCausesReissue() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let expiry = first.serving.certificate.notValidAfter

            let justOutside = try ClusterPKI.loadOrCreate(
                directory: dir, servingNames: names, servingIPs: ips, now: expiry - 31 * day)
            #expect(justOutside.servingIssueReason == nil)

            let later = expiry - 29 * day
            let renewed = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: later)
            #expect(renewed.servingIssueReason != nil)
            #expect(renewed.serving.certificate != first.serving.certificate)
            #expect(renewed.serving.certificate.notValidAfter >= later + 364 * day)
            #expect(renewed.ca.certificate == first.ca.certificate)
        }
    }

    @Test func servingCertificateFromAnotherCAIsReissued() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let stranger = try CertificateAuthority.create(now: referenceNow)
            let foreign = try stranger.issueIdentity(
                commonName: "x", dnsNames: names, ipAddresses: ips, validity: 365 * day, usage: .serverAuth,
                now: referenceNow)
            try SecureFile.write(Data(foreign.privateKeyPEM.utf8), to: first.serverKeyPath, mode: 0o600)
            try SecureFile.write(Data(foreign.certificatePEM.utf8), to: first.serverCertificatePath, mode: 0o644)

            let second = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            #expect(second.servingIssueReason != nil)
            #expect(second.ca.isIssuer(of: second.serving.certificate))
        }
    }

    @Test func corruptServingFilesAreReissued() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            try SecureFile.write(Data("garbage".utf8), to: first.serverCertificatePath, mode: 0o644)
            let second = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            #expect(second.servingIssueReason != nil)
            #expect(second.ca.isIssuer(of: second.serving.certificate))
        }
    }

    @Test func corruptCAFileIsAnErrorNamingTheFile() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            try SecureFile.write(Data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8),
                to: first.caCertificatePath, mode: 0o644)
            let error = #expect(throws: PKIError.self) {
                try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            }
            #expect(error?.code == .corruptFile)
            #expect(error?.path == first.caCertificatePath)
            #expect(error?.description.contains("delete the PKI directory") == true)
        }
    }

    @Test func missingCAKeyIsAnErrorNotASilentNewCA() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            try FileManager.default.removeItem(atPath: first.caKeyPath)
            let error = #expect(throws: PKIError.self) {
                try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            }
            #expect(error?.code == .missingFile)
            #expect(error?.path == first.caKeyPath)
        }
    }

    @Test func mismatchedCAKeyIsAnError() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let other = try CertificateAuthority.create(now: referenceNow)
            try other.write(certificatePath: dir + "/other.crt", keyPath: dir + "/other.key")
            try FileManager.default.removeItem(atPath: first.caKeyPath)
            try FileManager.default.copyItem(atPath: dir + "/other.key", toPath: first.caKeyPath)
            let error = #expect(throws: PKIError.self) {
                try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            }
            #expect(error?.code == .keyMismatch)
        }
    }

    @Test func expiredCAIsAnError() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            let error = #expect(throws: PKIError.self) {
                try ClusterPKI.loadOrCreate(
                    directory: dir, servingNames: names, servingIPs: ips,
                    now: first.ca.certificate.notValidAfter + 1)
            }
            #expect(error?.code == .expired)
        }
    }

    @Test func looseKeyAndTokenPermissionsAreTightened() async throws {
        try await withTemporaryDirectory { dir in
            let first = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            for path in [first.caKeyPath, first.serverKeyPath, first.tokenPath] {
                #expect(chmod(path, 0o644) == 0)
            }
            let second = try ClusterPKI.loadOrCreate(directory: dir, servingNames: names, servingIPs: ips, now: referenceNow)
            #expect(second.servingIssueReason == nil)
            for path in [first.caKeyPath, first.serverKeyPath, first.tokenPath] {
                #expect(try SecureFile.mode(of: path) == 0o600)
            }
        }
    }

    @Test func emptyServingNamesAreRejected() async throws {
        try await withTemporaryDirectory { dir in
            #expect(throws: PKIError.self) {
                try ClusterPKI.loadOrCreate(directory: dir, servingNames: [], servingIPs: [], now: referenceNow)
            }
        }
    }
}
