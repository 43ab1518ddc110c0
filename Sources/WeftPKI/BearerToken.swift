import Crypto
import Foundation

/// The cluster's shared bearer token: 32 bytes from the system CSPRNG, hex encoded (64 characters),
/// stored owner-only.
public enum BearerToken {
    /// Tokens read from disk shorter than this (in characters) are rejected as too weak.
    public static let minimumLength = 32

    /// Returns a new token: 32 bytes from `SystemRandomNumberGenerator` (getrandom/arc4random), lowercase hex.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in SecureFile.hexByte(UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Returns the token stored at `path`, creating it (mode 0600, no trailing newline) if the file does not
    /// exist. A token file readable by group or others is tightened to 0600; surrounding whitespace is ignored.
    public static func loadOrCreate(path: String) throws -> String {
        if !SecureFile.exists(path) {
            let token = generate()
            try SecureFile.write(Data(token.utf8), to: path, mode: 0o600)
            return token
        }
        try SecureFile.restrictToOwner(path)
        let remedy = "write a token of at least \(minimumLength) printable characters into it, or delete it to "
            + "generate a new one (clients holding the old token must then be given the new one)"
        guard let text = String(data: try SecureFile.read(path), encoding: .utf8) else {
            throw PKIError.corrupt(path, "token file is not UTF-8 text", nil, remedy: remedy)
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw PKIError.corrupt(path, "token contains whitespace or non-printable characters", nil, remedy: remedy)
        }
        guard token.count >= minimumLength else {
            throw PKIError.corrupt(
                path, "token is \(token.count) characters, fewer than the \(minimumLength) required", nil, remedy: remedy)
        }
        return token
    }

    /// Compares a presented token with the expected one in time that depends on neither their contents nor
    /// where they differ: both are hashed with SHA-256 and the digests compared without early exit.
    public static func matches(_ presented: some StringProtocol, _ expected: String) -> Bool {
        let presentedDigest = SHA256.hash(data: Data(presented.utf8))
        let expectedDigest = SHA256.hash(data: Data(expected.utf8))
        var difference: UInt8 = 0
        for (a, b) in zip(presentedDigest, expectedDigest) {
            difference |= a ^ b
        }
        return difference == 0
    }
}
