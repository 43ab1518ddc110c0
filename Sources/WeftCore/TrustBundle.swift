/// The mesh's trust roots as the API reports them (`GET /api/v1/ca`): each root's state and
/// fingerprint, and the bundle (every root, PEM) that node proxies verify peers with.
public struct TrustBundleStatus: Codable, Sendable, Hashable {
    public var roots: [TrustRoot]
    public var bundle: [String]

    public init(roots: [TrustRoot], bundle: [String]) {
        self.roots = roots
        self.bundle = bundle
    }

    /// The fingerprint of the root that signs new certificates.
    public var activeFingerprint: String? { roots.first { $0.state == "active" }?.fingerprint }
}

public struct TrustRoot: Codable, Sendable, Hashable {
    public var id: String
    /// `active` (signs new SVIDs) or `trusted` (in the bundle only).
    public var state: String
    /// SHA-256 of the root certificate (DER), hex.
    public var fingerprint: String
    /// RFC 3339.
    public var notAfter: String

    public init(id: String, state: String, fingerprint: String, notAfter: String) {
        self.id = id
        self.state = state
        self.fingerprint = fingerprint
        self.notAfter = notAfter
    }
}
