import Crypto
import Foundation

/// The key that encrypts Secrets at rest in the store: 32 random bytes (AES-256-GCM), kept base64 in a
/// file of mode 0600 in the data directory. Losing the file makes every stored Secret unreadable.
public struct SecretsKey: Sendable {
    private let key: SymmetricKey
    /// Stored objects sealed with this key start with these bytes, so a reader can tell them from JSON.
    public static let envelopePrefix = Data("weft-aesgcm-v1:".utf8)

    public init(bytes: Data) throws {
        guard bytes.count == 32 else {
            throw PKIError(code: .invalidArgument, reason: "a secrets key has 32 bytes, not \(bytes.count)")
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A new random key (not saved).
    public static func random() -> SecretsKey {
        try! SecretsKey(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    /// Reads the key at `path`, or creates it (mode 0600) when there is no file. A file readable by others
    /// is made owner-only.
    public static func loadOrCreate(path: String) throws -> SecretsKey {
        if SecureFile.exists(path) {
            try SecureFile.restrictToOwner(path)
            let text = String(decoding: try SecureFile.read(path), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = Data(base64Encoded: text), bytes.count == 32 else {
                throw PKIError(code: .corruptFile, path: path, reason: "is not a secrets key (32 bytes in base64)",
                               remedy: "restore it from a backup; without it the stored Secrets cannot be decrypted")
            }
            return try SecretsKey(bytes: bytes)
        }
        let key = random()
        let text = key.key.withUnsafeBytes { Data($0) }.base64EncodedString() + "\n"
        try SecureFile.write(Data(text.utf8), to: path, mode: 0o600)
        return key
    }

    /// `plaintext` sealed with a fresh nonce and bound to `context` (the object's key), behind
    /// ``envelopePrefix``.
    public func seal(_ plaintext: Data, context: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        guard let combined = box.combined else {
            throw PKIError(code: .signingFailed, reason: "AES-GCM produced no combined box")
        }
        return Self.envelopePrefix + combined
    }

    /// Whether `data` was sealed (starts with ``envelopePrefix``).
    public static func isSealed(_ data: Data) -> Bool { data.starts(with: envelopePrefix) }

    /// The plaintext of a sealed `data`; fails when the key, the context or the bytes do not match.
    public func open(_ data: Data, context: String) throws -> Data {
        guard Self.isSealed(data) else {
            throw PKIError(code: .corruptFile, reason: "the stored object is not encrypted")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: data.dropFirst(Self.envelopePrefix.count))
            return try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        } catch {
            throw PKIError(code: .corruptFile, reason: "cannot decrypt \(context) (\(error))",
                           remedy: "the store was written with another secrets key; restore the data directory's secrets.key")
        }
    }

    /// A keyed digest (HMAC-SHA256, hex, 16 characters) that reveals nothing of `data` without the key.
    public func digest(_ data: Data) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: data, using: key)
        return mac.prefix(8).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
