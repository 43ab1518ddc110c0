/// A failure in the cluster PKI: what failed, which file (if any), and what the operator can do about it.
public struct PKIError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure; a struct rather than an enum so new kinds can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A short stable name for the kind of failure, such as `corruptFile`.
        public let name: String

        /// Reading, writing, locking or creating a file or directory failed at the operating-system level.
        public static let fileSystem = Code(name: "fileSystem")
        /// A file exists but its contents cannot be used (not PEM, wrong key type, not a CA, ...).
        public static let corruptFile = Code(name: "corruptFile")
        /// A file that belongs with another existing file is missing (e.g. `ca.key` without `ca.crt`).
        public static let missingFile = Code(name: "missingFile")
        /// A private key does not belong to the certificate it was stored with.
        public static let keyMismatch = Code(name: "keyMismatch")
        /// A certificate authority is outside its validity period.
        public static let expired = Code(name: "expired")
        /// A caller-supplied value (name, IP address, URI, lifetime, usage) is not acceptable.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// Building or signing a certificate or key failed.
        public static let signingFailed = Code(name: "signingFailed")

        /// The code's ``name``.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// The file or directory involved, when there is one.
    public var path: String?
    /// What went wrong, in one sentence.
    public var reason: String
    /// What the operator can do to fix it, when there is something to do.
    public var remedy: String?

    /// Creates an error; `reason` says what failed, `remedy` what to do.
    public init(code: Code, path: String? = nil, reason: String, remedy: String? = nil) {
        self.code = code
        self.path = path
        self.reason = reason
        self.remedy = remedy
    }

    /// One line: `pki: <path>: <reason>; <remedy>`.
    public var description: String {
        var text = "pki: "
        if let path { text += "\(path): " }
        text += reason
        if let remedy { text += "; \(remedy)" }
        return text
    }
}

extension PKIError {
    static func corrupt(_ path: String?, _ what: String, _ underlying: (any Error)?, remedy: String) -> PKIError {
        var reason = what
        if let underlying { reason += " (\(underlying))" }
        return PKIError(code: .corruptFile, path: path, reason: reason, remedy: remedy)
    }

    static func invalid(_ reason: String) -> PKIError {
        PKIError(code: .invalidArgument, reason: reason)
    }
}
