import Foundation
import Testing
import X509
@testable import WeftPKI

@Suite("Mesh roots and their rotation")
struct MeshAuthoritiesTests {
    @Test func aRotationPreparesActivatesAndRetiresInOrder() async throws {
        try await withTemporaryDirectory { pki in
            let cluster = try CertificateAuthority.create()
            let roots = try MeshAuthorities(pkiDirectory: pki, clusterAuthority: cluster)
            #expect(roots.all.map(\.id) == ["cluster"])
            #expect(roots.bundle == [cluster.certificatePEM])
            #expect(throws: MeshAuthorities.RotationError.self) { try roots.activate() }
            #expect(throws: MeshAuthorities.RotationError.self) { try roots.retire() }

            let next = try roots.prepare()
            #expect(roots.all.map(\.state) == [.active, .trusted])
            #expect(roots.active.certificatePEM == cluster.certificatePEM, "a prepared root signs nothing yet")
            #expect(roots.bundle == [cluster.certificatePEM, next.authority.certificatePEM])
            #expect(throws: MeshAuthorities.RotationError.self) { try roots.prepare() }
            #expect(throws: MeshAuthorities.RotationError.self) { try roots.retire() }
            let keyPath = "\(pki)/mesh/\(next.id).key"
            #expect(try SecureFile.mode(of: keyPath) & 0o777 == 0o600)

            // Reloaded from disk, the state is the same.
            let reloaded = try MeshAuthorities(pkiDirectory: pki, clusterAuthority: cluster)
            #expect(reloaded.all.map(\.id) == ["cluster", next.id])

            try roots.activate()
            #expect(roots.all.map(\.state) == [.trusted, .active])
            #expect(roots.active.certificatePEM == next.authority.certificatePEM)
            #expect(roots.bundle.count == 2, "the old root stays trusted until it is retired")

            let retired = try roots.retire()
            #expect(retired.map(\.id) == ["cluster"])
            #expect(roots.bundle == [next.authority.certificatePEM])
            #expect(try MeshAuthorities(pkiDirectory: pki, clusterAuthority: cluster).all.map(\.id) == [next.id])
            // A second rotation retires the first rotation's root with its key file.
            let third = try roots.prepare()
            try roots.activate()
            try roots.retire()
            #expect(roots.all.map(\.id) == [third.id])
            #expect(!FileManager.default.fileExists(atPath: keyPath))
        }
    }

    @Test func fingerprintsAreTheCertificatesSHA256() throws {
        let ca = try CertificateAuthority.create()
        let described = MeshAuthorities.describe(ca)
        #expect(described.fingerprint.count == 64)
        #expect(described.fingerprint != MeshAuthorities.describe(try CertificateAuthority.create()).fingerprint)
    }
}
