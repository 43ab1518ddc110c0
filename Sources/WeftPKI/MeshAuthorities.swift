import Crypto
import Foundation
import SwiftASN1
import Synchronization
import X509

/// The roots of the mesh's trust domain: the one that signs node and workload SVIDs (active), and any
/// others still trusted during a rotation. The trust bundle is every root listed.
///
/// A rotation takes three steps, each safe on its own — no connection is dropped at any of them:
/// 1. `prepare`: a new root joins the bundle; nodes learn to trust it before anything is signed by it.
/// 2. `activate`: the new root signs from now on; nodes renew their certificates from it at once. The
///    old root stays in the bundle, so certificates it signed keep working until they are replaced.
/// 3. `retire`: the old root leaves the bundle (and its key is deleted).
///
/// Kept in `<pki>/mesh/`: `roots.json` (the order and states) and `<id>.crt` / `<id>.key` (0600) per
/// root. Before the first rotation the cluster CA (`<pki>/ca.crt`) is the only, active root; it keeps
/// serving the API whatever happens to the mesh roots.
public final class MeshAuthorities: Sendable {
    public enum State: String, Codable, Sendable {
        /// Signs new SVIDs; exactly one root is active.
        case active
        /// Trusted, not signing: a new root before activation, or an old one until it is retired.
        case trusted
    }

    public struct Root: Sendable {
        public let id: String
        public let state: State
        public let authority: CertificateAuthority
        /// SHA-256 of the certificate (DER), hex.
        public let fingerprint: String
    }

    /// A refused step, with what to do instead.
    public struct RotationError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    private struct Entry: Codable {
        var id: String
        var state: State
    }

    private let directory: String
    private let cluster: CertificateAuthority
    private let roots: Mutex<[Root]>

    /// Loads the roots from `<pkiDirectory>/mesh`, or starts with the cluster CA alone.
    public init(pkiDirectory: String, clusterAuthority: CertificateAuthority) throws {
        directory = (pkiDirectory as NSString).appendingPathComponent("mesh")
        cluster = clusterAuthority
        let manifest = (directory as NSString).appendingPathComponent("roots.json")
        guard SecureFile.exists(manifest) else {
            roots = Mutex([Self.root(id: "cluster", state: .active, authority: clusterAuthority)])
            return
        }
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: try SecureFile.read(manifest))
        } catch {
            throw PKIError.corrupt(manifest, "the mesh roots manifest is unreadable", error,
                                   remedy: "restore it from a backup, or remove \(directory) to go back to the cluster CA alone")
        }
        var loaded: [Root] = []
        for entry in entries {
            let authority = entry.id == "cluster" ? clusterAuthority
                : try CertificateAuthority.load(certificatePath: Self.path(directory, entry.id, "crt"), keyPath: Self.path(directory, entry.id, "key"))
            loaded.append(Self.root(id: entry.id, state: entry.state, authority: authority))
        }
        guard loaded.filter({ $0.state == .active }).count == 1 else {
            throw PKIError.corrupt(manifest, "the mesh roots manifest must mark exactly one root active", nil,
                                   remedy: "edit \(manifest) or restore it from a backup")
        }
        roots = Mutex(loaded)
    }

    /// Every root, oldest first.
    public var all: [Root] { roots.withLock { $0 } }

    /// The root that signs SVIDs.
    public var active: CertificateAuthority { roots.withLock { $0.first { $0.state == .active }!.authority } }

    /// Every trusted root's certificate, PEM, oldest first.
    public var bundle: [String] { roots.withLock { $0.map(\.authority.certificatePEM) } }

    /// Step 1: a new root joins the bundle. Refused while a rotation is under way (more than one root).
    @discardableResult
    public func prepare(now: Date = Date()) throws -> Root {
        try roots.withLock { roots in
            guard roots.count == 1 else {
                throw RotationError(description: "a rotation is under way (\(roots.count) roots in the bundle); finish it with `weft ca activate` and `weft ca retire` first")
            }
            let authority = try CertificateAuthority.create(commonName: "weft-mesh-root", now: now)
            let id = "root-\(Int(now.timeIntervalSince1970))-\(SecureFile.randomHex(bytes: 4))"
            try SecureFile.createDirectory(directory, mode: 0o700)
            try authority.write(certificatePath: Self.path(directory, id, "crt"), keyPath: Self.path(directory, id, "key"))
            let root = Self.root(id: id, state: .trusted, authority: authority)
            var next = roots
            next.append(root)
            try save(next)
            roots = next
            return root
        }
    }

    /// Step 2: the newest root signs from now on; the one that signed before stays trusted.
    @discardableResult
    public func activate() throws -> Root {
        try roots.withLock { roots in
            guard let newest = roots.last, newest.state == .trusted else {
                throw RotationError(description: "no prepared root to activate; start a rotation with `weft ca rotate`")
            }
            let next = roots.map { Self.root(id: $0.id, state: $0.id == newest.id ? .active : .trusted, authority: $0.authority) }
            try save(next)
            roots = next
            return next.last!
        }
    }

    /// Step 3: every root but the active one leaves the bundle; their keys are deleted.
    @discardableResult
    public func retire() throws -> [Root] {
        try roots.withLock { roots in
            let retired = roots.filter { $0.state == .trusted }
            guard !retired.isEmpty, roots.last?.state == .active else {
                throw RotationError(description: roots.count == 1
                    ? "nothing to retire: the bundle holds only the active root"
                    : "the newest root is not active yet; run `weft ca activate` first, so nothing is retired that still signs")
            }
            let next = roots.filter { $0.state == .active }
            try save(next)
            roots = next
            for root in retired where root.id != "cluster" {
                try? FileManager.default.removeItem(atPath: Self.path(directory, root.id, "key"))
                try? FileManager.default.removeItem(atPath: Self.path(directory, root.id, "crt"))
            }
            return retired
        }
    }

    private func save(_ roots: [Root]) throws {
        try SecureFile.createDirectory(directory, mode: 0o700)
        let data = try JSONEncoder().encode(roots.map { Entry(id: $0.id, state: $0.state) })
        try SecureFile.write(data, to: (directory as NSString).appendingPathComponent("roots.json"), mode: 0o600)
    }

    private static func root(id: String, state: State, authority: CertificateAuthority) -> Root {
        Root(id: id, state: state, authority: authority, fingerprint: describe(authority).fingerprint)
    }

    /// The SHA-256 fingerprint (hex, of the DER certificate) and expiry (RFC 3339) of a root.
    public static func describe(_ authority: CertificateAuthority) -> (fingerprint: String, notAfter: String) {
        let der = (try? authority.certificate.serializeAsDER()) ?? []
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        return (fingerprint, authority.certificate.notValidAfter.formatted(.iso8601))
    }

    private static func path(_ directory: String, _ id: String, _ suffix: String) -> String {
        (directory as NSString).appendingPathComponent("\(id).\(suffix)")
    }
}

extension Certificate {
    func serializeAsDER() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}
