import Foundation
import Testing

@testable import WeftPKI

@Suite struct SecureFileTests {
    @Test func writeSetsModeRegardlessOfUmask() async throws {
        try await withTemporaryDirectory { dir in
            // The process umask is shared with tests running in parallel, so it is not changed here; a
            // group-writable mode is one the usual umask (022) would strip if fchmod were missing.
            try SecureFile.write(Data("shared".utf8), to: dir + "/g", mode: 0o660)
            #expect(try SecureFile.mode(of: dir + "/g") == 0o660)
            try SecureFile.write(Data("secret".utf8), to: dir + "/a", mode: 0o600)
            #expect(try SecureFile.mode(of: dir + "/a") == 0o600)
        }
    }

    @Test func writeReplacesContentsAndMode() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/f"
            try SecureFile.write(Data("one".utf8), to: path, mode: 0o644)
            try SecureFile.write(Data("two".utf8), to: path, mode: 0o600)
            #expect(try fileBytes(path) == Data("two".utf8))
            #expect(try SecureFile.mode(of: path) == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["f"])
        }
    }

    @Test func writeIntoMissingDirectoryFailsWithPath() async throws {
        try await withTemporaryDirectory { dir in
            let error = #expect(throws: PKIError.self) {
                try SecureFile.write(Data(), to: dir + "/missing/f", mode: 0o600)
            }
            #expect(error?.code == .fileSystem)
            #expect(error?.path?.hasPrefix(dir + "/missing/") == true)
        }
    }

    @Test func restrictToOwnerDropsGroupAndOtherBits() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/k"
            try SecureFile.write(Data("k".utf8), to: path, mode: 0o640)
            #expect(try SecureFile.restrictToOwner(path))
            #expect(try SecureFile.mode(of: path) == 0o600)
            #expect(try !SecureFile.restrictToOwner(path))
        }
    }

    @Test func createDirectoryMakesParentsAndSetsMode() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/a/b/pki"
            try SecureFile.createDirectory(path, mode: 0o700)
            #expect(try SecureFile.mode(of: path) == 0o700)
            try SecureFile.createDirectory(path, mode: 0o700)  // idempotent
            try SecureFile.write(Data(), to: dir + "/file", mode: 0o600)
            #expect(throws: PKIError.self) { try SecureFile.createDirectory(dir + "/file", mode: 0o700) }
        }
    }
}
