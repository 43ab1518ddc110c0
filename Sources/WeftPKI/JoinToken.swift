import Crypto
import Foundation
import SwiftASN1
import X509

/// A join token, `weft1.<id>.<secret>.<ca-hash>`: what `weft token create` prints and `weft agent --token`
/// takes (as kubeadm's token plus its `--discovery-token-ca-cert-hash`, in one string).
///
/// - `id`: 6 characters `[a-z0-9]`, public: it names the token in `weft token list` and `revoke`.
/// - `secret`: 24 characters `[a-z0-9]` (about 124 bits) from the system CSPRNG; the server keeps only its
///   SHA-256.
/// - `ca-hash`: 64 lower-case hex digits, the SHA-256 of the cluster CA certificate's DER
///   SubjectPublicKeyInfo (``CAPin``). The agent checks the CA the server presents against it before it
///   sends anything, so a token also tells the agent which server to trust.
public struct JoinToken: Sendable, Hashable, CustomStringConvertible {
    /// The format's version tag, the token's first field.
    public static let prefix = "weft1"
    public static let idLength = 6
    public static let secretLength = 24
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    public let id: String
    public let secret: String
    public let caHash: String

    public init(id: String, secret: String, caHash: String) throws {
        guard id.count == Self.idLength, Self.isTokenText(id) else {
            throw PKIError.invalid("join token id \"\(id)\" is not \(Self.idLength) characters of a-z and 0-9")
        }
        guard secret.count == Self.secretLength, Self.isTokenText(secret) else {
            throw PKIError.invalid("join token secret is not \(Self.secretLength) characters of a-z and 0-9")
        }
        guard CAPin.isHash(caHash) else {
            throw PKIError.invalid("join token CA hash is not 64 lower-case hex digits (a SHA-256)")
        }
        self.id = id
        self.secret = secret
        self.caHash = caHash
    }

    /// Parses `weft1.<id>.<secret>.<ca-hash>`; the error says which part is wrong, never the secret.
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == Self.prefix else {
            throw PKIError.invalid("not a join token: expected \(Self.prefix).<id>.<secret>.<ca-hash> as printed by `weft token create`")
        }
        try self.init(id: parts[1], secret: parts[2], caHash: parts[3])
    }

    /// A new token for the CA with hash `caHash`, id and secret from the system CSPRNG.
    public static func generate(caHash: String) throws -> JoinToken {
        try JoinToken(id: randomText(idLength), secret: randomText(secretLength), caHash: caHash)
    }

    /// The whole token.
    public var description: String { "\(Self.prefix).\(id).\(secret).\(caHash)" }

    /// The SHA-256 of the secret, lower-case hex: what the server stores.
    public var secretHash: String { SecretHash.of(secret) }

    static func isTokenText(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    static func randomText(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}

/// A node's API credential, `weftnode1.<node>.<secret>`: issued once by `POST /api/v1/join`, kept by the
/// agent (0600), presented as its bearer token. The node name in it lets the server find the stored hash
/// without a scan; the secret is 32 bytes from the system CSPRNG, hex.
public struct NodeCredential: Sendable, Hashable, CustomStringConvertible {
    public static let prefix = "weftnode1"

    public let node: String
    public let secret: String

    public init(node: String, secret: String) {
        self.node = node
        self.secret = secret
    }

    /// Parses a presented credential; nil when the text does not have the credential's shape.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix, !parts[1].isEmpty, parts[2].count == 64,
              parts[2].unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }) else { return nil }
        self.init(node: String(parts[1]), secret: String(parts[2]))
    }

    /// A new credential for `node`.
    public static func generate(node: String) -> NodeCredential {
        NodeCredential(node: node, secret: BearerToken.generate())
    }

    public var description: String { "\(Self.prefix).\(node).\(secret)" }

    /// The SHA-256 of the secret, lower-case hex: what the server stores.
    public var secretHash: String { SecretHash.of(secret) }
}

/// Hashes of high-entropy secrets (join token and node credential secrets are at least 120 random bits,
/// so a fast hash is enough: there is nothing to brute-force), and their comparison.
public enum SecretHash {
    /// SHA-256 of `secret`'s UTF-8, lower-case hex.
    public static func of(_ secret: some StringProtocol) -> String {
        SHA256.hash(data: Data(secret.utf8)).map(SecureFile.hexByte).joined()
    }

    /// Whether `secret` hashes to `storedHash`, compared in time independent of where they differ.
    public static func matches(_ secret: some StringProtocol, storedHash: String) -> Bool {
        let presented = Array(of(secret).utf8)
        let stored = Array(storedHash.utf8)
        guard presented.count == stored.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(presented, stored) { difference |= a ^ b }
        return difference == 0
    }
}

/// Pinning of the cluster CA by the hash of its public key, as kubeadm does
/// (`sha256:` + SHA-256 of the DER SubjectPublicKeyInfo). The same value as
/// `openssl x509 -pubkey -noout -in ca.crt | openssl pkey -pubin -outform der | sha256sum`.
public enum CAPin {
    /// The hash of `certificate`'s SubjectPublicKeyInfo, 64 lower-case hex digits.
    public static func hash(of certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        return SHA256.hash(data: serializer.serializedBytes).map(SecureFile.hexByte).joined()
    }

    /// The hash of the first certificate in `pem`.
    public static func hash(ofPEM pem: String) throws -> String {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: pem)
        } catch {
            throw PKIError.invalid("the CA certificate is not a PEM certificate (\(error))")
        }
        return try hash(of: certificate)
    }

    /// Checks that `pem` is a CA certificate whose key hashes to `expected`; the error names both hashes.
    public static func verify(pem: String, expected: String) throws {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: pem)
        } catch {
            throw PKIError.invalid("the server sent a CA certificate that is not PEM (\(error)); the join token was not sent")
        }
        let actual = try hash(of: certificate)
        guard actual == expected.lowercased() else {
            throw PKIError(code: .keyMismatch, reason: "the server's CA key hashes to \(actual), but the join token pins \(expected)",
                           remedy: "this is not the cluster the token was made for (or someone is in between): check --server, or create a new token on the right server; the join token was not sent")
        }
        guard let constraints = try? certificate.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
            throw PKIError.invalid("the server's pinned certificate is not a CA certificate")
        }
    }

    static func isHash(_ text: String) -> Bool {
        text.count == 64 && text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }
}
