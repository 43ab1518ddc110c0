import X509

/// A SPIFFE ID (`spiffe://<trust-domain>/<path>`), checked against the SPIFFE ID specification:
/// a trust domain of lower-case letters, digits, `.`, `-` and `_`; a path of non-empty segments of
/// letters, digits, `.`, `-` and `_`, none of them `.` or `..`; no port, user info, query or fragment;
/// 2,048 bytes at most.
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible {
    public let trustDomain: String
    /// The path, starting with `/`.
    public let path: String

    public static let maximumLength = 2048

    public init(parsing text: String) throws {
        let scheme = "spiffe://"
        guard text.hasPrefix(scheme) else { throw Self.invalid(text, "it must start with spiffe://") }
        guard text.utf8.count <= Self.maximumLength else { throw Self.invalid(text, "it is longer than 2048 bytes") }
        let rest = text.dropFirst(scheme.count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let domain = String(rest[..<slash])
        let segments = rest[slash...].split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        try self.init(trustDomain: domain, segments: segments, text: text)
    }

    /// `spiffe://<trustDomain>/<segments joined by />`.
    public init(trustDomain: String, segments: [String]) throws {
        try self.init(trustDomain: trustDomain, segments: segments, text: nil)
    }

    private init(trustDomain: String, segments: [String], text: String?) throws {
        let shown = text ?? "spiffe://\(trustDomain)/\(segments.joined(separator: "/"))"
        guard !trustDomain.isEmpty else { throw Self.invalid(shown, "the trust domain is empty") }
        guard trustDomain.utf8.allSatisfy({ Self.isLowerDomainByte($0) }) else {
            throw Self.invalid(shown, "the trust domain may hold only lower-case letters, digits, '.', '-' and '_'")
        }
        guard !segments.isEmpty else { throw Self.invalid(shown, "the path is empty") }
        for segment in segments {
            guard !segment.isEmpty else { throw Self.invalid(shown, "a path segment is empty") }
            guard segment != ".", segment != ".." else { throw Self.invalid(shown, "a path segment is '.' or '..'") }
            guard segment.utf8.allSatisfy({ Self.isPathByte($0) }) else {
                throw Self.invalid(shown, "path segments may hold only letters, digits, '.', '-' and '_'")
            }
        }
        self.trustDomain = trustDomain
        path = "/" + segments.joined(separator: "/")
        guard description.utf8.count <= Self.maximumLength else { throw Self.invalid(shown, "it is longer than 2048 bytes") }
    }

    /// `spiffe://<trustDomain>/node/<name>`: a node agent.
    public static func node(_ name: String, trustDomain: String) throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, segments: ["node", name])
    }

    /// `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`: a workload.
    public static func workload(namespace: String, serviceAccount: String, trustDomain: String) throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, segments: ["ns", namespace, "sa", serviceAccount])
    }

    public var description: String { "spiffe://\(trustDomain)\(path)" }

    /// The name in a node ID (`/node/<name>`), else nil.
    public var nodeName: String? {
        let segments = path.split(separator: "/").map(String.init)
        return segments.count == 2 && segments[0] == "node" ? segments[1] : nil
    }

    /// The namespace and service account in a workload ID (`/ns/<namespace>/sa/<account>`), else nil.
    public var workload: (namespace: String, serviceAccount: String)? {
        let segments = path.split(separator: "/").map(String.init)
        guard segments.count == 4, segments[0] == "ns", segments[2] == "sa" else { return nil }
        return (segments[1], segments[3])
    }

    /// The one SPIFFE ID among `certificate`'s URI SANs. Nil when there is none or more than one: an
    /// SVID carries exactly one.
    public init?(certificate: Certificate) {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        let ids = names.compactMap { name -> SPIFFEID? in
            guard case .uniformResourceIdentifier(let uri) = name, uri.hasPrefix("spiffe://") else { return nil }
            return try? SPIFFEID(parsing: uri)
        }
        guard ids.count == 1 else { return nil }
        self = ids[0]
    }

    private static func isLowerDomainByte(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2E || byte == 0x2D || byte == 0x5F
    }

    private static func isPathByte(_ byte: UInt8) -> Bool {
        isLowerDomainByte(byte) || (0x41...0x5A).contains(byte)
    }

    private static func invalid(_ text: String, _ reason: String) -> PKIError {
        .invalid("\"\(text)\" is not a SPIFFE ID: \(reason)")
    }
}
