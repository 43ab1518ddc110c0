import Foundation
import Testing

@testable import WeftPKI

@Suite struct SecretsKeyTests {
    @Test func keyFileIsCreatedOwnerOnlyAndReused() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/secrets.key"
            let first = try SecretsKey.loadOrCreate(path: path)
            #expect(try SecureFile.mode(of: path) == 0o600)
            let sealed = try first.seal(Data("hunter2".utf8), context: "Secret/default/db")
            let again = try SecretsKey.loadOrCreate(path: path)
            #expect(try again.open(sealed, context: "Secret/default/db") == Data("hunter2".utf8))
            #expect(first.digest(Data("x".utf8)) == again.digest(Data("x".utf8)))
            // A copy made readable by others is made owner-only again when loaded.
            #expect(chmod(path, 0o644) == 0)
            _ = try SecretsKey.loadOrCreate(path: path)
            #expect(try SecureFile.mode(of: path) == 0o600)
        }
    }

    @Test func sealedBytesHideThePlaintextAndItsBase64() throws {
        let key = SecretsKey.random()
        let plaintext = Data(#"{"data":{"password":"aHVudGVyMg=="}}"#.utf8)
        let sealed = try key.seal(plaintext, context: "Secret/default/db")
        #expect(SecretsKey.isSealed(sealed))
        #expect(sealed.range(of: Data("aHVudGVyMg==".utf8)) == nil)
        #expect(sealed.range(of: Data("password".utf8)) == nil)
        // A fresh nonce each time: the same value never gives the same bytes.
        #expect(try key.seal(plaintext, context: "Secret/default/db") != sealed)
        #expect(try key.open(sealed, context: "Secret/default/db") == plaintext)
    }

    @Test func anotherKeyAContextOrTamperingFails() throws {
        let key = SecretsKey.random()
        let sealed = try key.seal(Data("v".utf8), context: "Secret/default/a")
        #expect(throws: PKIError.self) { try SecretsKey.random().open(sealed, context: "Secret/default/a") }
        // Moved to another object's key: refused.
        #expect(throws: PKIError.self) { try key.open(sealed, context: "Secret/default/b") }
        var tampered = sealed
        tampered[tampered.count - 1] ^= 1
        #expect(throws: PKIError.self) { try key.open(tampered, context: "Secret/default/a") }
        #expect(throws: PKIError.self) { try key.open(Data("{}".utf8), context: "Secret/default/a") }
    }

    @Test func aCorruptKeyFileIsRefusedWithItsPath() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/secrets.key"
            try SecureFile.write(Data("not a key\n".utf8), to: path, mode: 0o600)
            do {
                _ = try SecretsKey.loadOrCreate(path: path)
                Issue.record("a corrupt key was accepted")
            } catch let error as PKIError {
                #expect(error.code == .corruptFile)
                #expect(error.description.contains(path))
            }
        }
    }
}
