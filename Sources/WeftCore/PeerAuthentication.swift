/// Whether the services of a namespace accept sources without a mesh identity. A namespace is strict
/// when any PeerAuthentication in it says `STRICT`.
public struct PeerAuthentication: Resource {
    public static let resourceKind = ResourceKind.peerAuthentication
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: PeerAuthenticationSpec

    public init(metadata: ObjectMeta, spec: PeerAuthenticationSpec) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.spec = spec
    }
}

public struct PeerAuthenticationSpec: Codable, Sendable, Hashable {
    public var mtls: PeerMutualTLS

    public init(mtls: PeerMutualTLS) { self.mtls = mtls }
}

public struct PeerMutualTLS: Codable, Sendable, Hashable {
    /// `STRICT` or `PERMISSIVE`.
    public var mode: String

    public init(mode: String) { self.mode = mode }

    public init(_ mode: MutualTLSMode) { self.mode = mode.rawValue }

    /// The mode, nil when `mode` is not one Weft knows (validation refuses those).
    public var mutualTLSMode: MutualTLSMode? { MutualTLSMode(rawValue: mode) }
}

public enum MutualTLSMode: String, Sendable, CaseIterable {
    /// Only sources with a mesh identity (mutual TLS) are accepted.
    case strict = "STRICT"
    /// Sources without a mesh identity are accepted too.
    case permissive = "PERMISSIVE"
}
