/// What `apply` did with one object; the API's answer lists one per applied document.
public struct ApplyOutcome: Sendable, Equatable, Codable {
    /// `Deployment` or `Service`.
    public var kind: String
    public var namespace: String
    public var name: String
    /// `created`, `configured` or `unchanged`.
    public var action: String

    public init(kind: String, namespace: String, name: String, action: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.action = action
    }
}

/// One invalid field of an applied document, as the API reports it in an error's `details`.
public struct InvalidField: Codable, Sendable, Equatable {
    /// Index of the document in the applied `items`.
    public var document: Int?
    /// `Kind/name` of the document, when known.
    public var object: String?
    public var path: String
    public var message: String

    public init(document: Int? = nil, object: String? = nil, path: String, message: String) {
        self.document = document
        self.object = object
        self.path = path
        self.message = message
    }
}

/// `POST /api/v1/certificates`: a CSR (PEM) and the SPIFFE ID it should be certified for.
public struct CertificateRequest: Codable, Sendable, Hashable {
    public var csr: String
    public var identity: String

    public init(csr: String, identity: String) {
        self.csr = csr
        self.identity = identity
    }
}

/// The answer: the certificate (PEM), the trust bundle to verify peers with (PEM roots), and when the
/// certificate expires (ISO 8601).
public struct IssuedCertificate: Codable, Sendable, Hashable {
    public var certificate: String
    public var trustBundle: [String]
    public var notAfter: String

    public init(certificate: String, trustBundle: [String], notAfter: String) {
        self.certificate = certificate
        self.trustBundle = trustBundle
        self.notAfter = notAfter
    }
}
