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

/// `GET /api/v1/cluster-info`, served without authentication: what a joining agent needs before it trusts
/// the server (the CA, which it checks against its join token's pin) and the settings every node shares.
public struct ClusterInfo: Codable, Sendable, Hashable {
    /// PEM of the cluster CA.
    public var certificateAuthority: String
    /// SPIFFE trust domain of node and workload certificates.
    public var trustDomain: String
    /// Services are `<service>.<namespace>.svc.<clusterDomain>`.
    public var clusterDomain: String
    /// A node without a heartbeat for this long becomes NotReady.
    public var nodeGraceSeconds: Double
    /// How often agents should renew their heartbeat (a third of the grace, at most 5 s).
    public var heartbeatIntervalSeconds: Double
    /// The block service VIPs come from (`weft server --service-cidr`); agents running the netns driver
    /// make it local to their node when it lies outside 127.0.0.0/8.
    public var serviceCIDR: String?

    public init(certificateAuthority: String, trustDomain: String, clusterDomain: String, nodeGraceSeconds: Double, heartbeatIntervalSeconds: Double,
                serviceCIDR: String? = nil) {
        self.certificateAuthority = certificateAuthority
        self.trustDomain = trustDomain
        self.clusterDomain = clusterDomain
        self.nodeGraceSeconds = nodeGraceSeconds
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.serviceCIDR = serviceCIDR
    }

    /// The heartbeat interval for a grace: a third of it, between 200 ms and 5 s.
    public static func heartbeatInterval(grace: Duration) -> Duration {
        min(.seconds(5), max(.milliseconds(200), grace / 3))
    }
}

/// `POST /api/v1/join`, authenticated by a join token: the node's name and a CSR for
/// `spiffe://<trust-domain>/node/<nodeName>`.
public struct JoinRequest: Codable, Sendable, Hashable {
    public var nodeName: String
    public var csr: String

    public init(nodeName: String, csr: String) {
        self.nodeName = nodeName
        self.csr = csr
    }
}

/// The answer to a join: the node certificate, the trust bundle and the node's API credential (shown once).
public struct JoinResponse: Codable, Sendable, Hashable {
    public var nodeName: String
    /// `weftnode1.<node>.<secret>`: the agent's bearer token from now on.
    public var credential: String
    public var certificate: IssuedCertificate

    public init(nodeName: String, credential: String, certificate: IssuedCertificate) {
        self.nodeName = nodeName
        self.credential = credential
        self.certificate = certificate
    }
}

/// `POST /api/v1/tokens`: a join token's lifetime and what it is for.
public struct JoinTokenRequest: Codable, Sendable, Hashable {
    public var ttlSeconds: Int
    public var description: String?

    public init(ttlSeconds: Int, description: String? = nil) {
        self.ttlSeconds = ttlSeconds
        self.description = description
    }
}

/// A join token as `GET /api/v1/tokens` lists it: never its secret. `POST` adds the whole `token` once.
public struct JoinTokenInfo: Codable, Sendable, Hashable {
    public var id: String
    public var description: String?
    /// RFC 3339.
    public var created: String
    /// RFC 3339.
    public var expires: String
    /// Nodes that joined with it, in order.
    public var usedBy: [String]
    /// The whole token, in the answer to its creation only.
    public var token: String?

    public init(id: String, description: String?, created: String, expires: String, usedBy: [String], token: String? = nil) {
        self.id = id
        self.description = description
        self.created = created
        self.expires = expires
        self.usedBy = usedBy
        self.token = token
    }
}
