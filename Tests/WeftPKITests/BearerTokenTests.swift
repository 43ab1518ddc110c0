import Foundation
import Testing

@testable import WeftPKI

@Suite struct BearerTokenTests {
    @Test func generatedTokensAre32RandomBytesInHex() {
        let a = BearerToken.generate()
        let b = BearerToken.generate()
        #expect(a.count == 64)
        #expect(a.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(a != b)
    }

    @Test func loadOrCreateCreatesOnceThenReuses() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/token"
            let created = try BearerToken.loadOrCreate(path: path)
            #expect(try SecureFile.mode(of: path) == 0o600)
            let bytes = try fileBytes(path)
            #expect(try BearerToken.loadOrCreate(path: path) == created)
            #expect(try fileBytes(path) == bytes)
        }
    }

    @Test func operatorWrittenTokenWithNewlineIsAccepted() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/token"
            let token = String(repeating: "k", count: 40)
            try SecureFile.write(Data((token + "\n").utf8), to: path, mode: 0o600)
            #expect(try BearerToken.loadOrCreate(path: path) == token)
        }
    }

    @Test(arguments: ["", "short", String(repeating: "a", count: 20) + " " + String(repeating: "b", count: 20)])
    func weakOrMalformedTokenFileIsAnError(contents: String) async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/token"
            try SecureFile.write(Data(contents.utf8), to: path, mode: 0o600)
            let error = #expect(throws: PKIError.self) { try BearerToken.loadOrCreate(path: path) }
            #expect(error?.code == .corruptFile)
            #expect(error?.path == path)
        }
    }

    @Test func matchesComparesWholeTokens() {
        let token = BearerToken.generate()
        #expect(BearerToken.matches(token, token))
        #expect(BearerToken.matches(Substring("Bearer \(token)").dropFirst(7), token))
        var flipped = Array(token)
        flipped[63] = flipped[63] == "0" ? "1" : "0"
        #expect(!BearerToken.matches(String(flipped), token))
        #expect(!BearerToken.matches(String(token.dropLast()), token))
        #expect(!BearerToken.matches(token + "0", token))
        #expect(!BearerToken.matches("", token))
        #expect(!BearerToken.matches(token, ""))
        #expect(BearerToken.matches("", ""))
    }
}
