import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import WeftCore

/// The Weft HTTPS API (docs/api.md) for the CLI and node agents.
///
/// TLS trusts only the cluster CA from the config, with hostname (or IP) verification; every request
/// carries the bearer token. Call `shutdown()` when done: the underlying `HTTPClient` requires it.
public final class APIClient: Sendable {
    public let config: ClientConfig
    /// The server URL without a trailing slash.
    let baseURL: String
    /// For requests with a response of bounded size: read-idle timeout, per-call deadline.
    let http: HTTPClient
    /// For log streams, which may stay silent for a long time: no read timeout.
    let streamingHTTP: HTTPClient

    /// Deadline of a non-streaming call.
    static let requestTimeout = TimeAmount.seconds(30)
    /// Largest body read from a non-streaming answer.
    static let maxBody = 64 * 1024 * 1024

    public init(config: ClientConfig) throws {
        guard let url = URL(string: config.server), url.scheme == "https", url.host != nil else {
            throw ClientError("server \"\(config.server)\" in the client config is not an https:// URL such as https://127.0.0.1:7443")
        }
        let authority: [NIOSSLCertificate]
        do {
            authority = try NIOSSLCertificate.fromPEMBytes(Array(config.certificateAuthority.utf8))
        } catch {
            throw ClientError("certificateAuthority in the client config is not a PEM certificate (\(error))")
        }
        guard !authority.isEmpty else {
            throw ClientError("certificateAuthority in the client config holds no certificate")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(authority)
        tls.certificateVerification = .fullVerification
        tls.minimumTLSVersion = .tlsv12

        func configuration(read: TimeAmount?) -> HTTPClient.Configuration {
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: read))
            // Fail at once when the server is down instead of retrying until the deadline.
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.redirectConfiguration = .disallow
            return configuration
        }
        self.config = config
        self.baseURL = config.server.hasSuffix("/") ? String(config.server.dropLast()) : config.server
        // Watches get a bookmark every few seconds, so 60 s of silence means the connection is dead.
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration(read: .seconds(60)))
        self.streamingHTTP = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration(read: nil))
    }

    /// Closes connections; the client cannot be used afterwards.
    public func shutdown() async throws {
        var failure: (any Error)?
        do { try await http.shutdown() } catch { failure = error }
        do { try await streamingHTTP.shutdown() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    // MARK: - Objects

    /// Lists objects of `kind` in `namespace`, or in all namespaces when it is nil.
    public func list(_ kind: ResourceKind, namespace: String?) async throws -> ObjectList {
        try await send(.GET, Self.collectionPath(kind, namespace: namespace), decoding: ObjectList.self)
    }

    /// One object as JSON; a missing object is an `APIError` with status 404.
    public func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        try await send(.GET, Self.objectPath(kind, namespace: namespace, name: name), decoding: JSONValue.self)
    }

    /// Lists objects of `type`, decoded, with the revision to watch from.
    public func list<T: Resource>(_ type: T.Type, namespace: String?) async throws -> (items: [T], resourceVersion: String) {
        let list = try await send(.GET, Self.collectionPath(T.resourceKind, namespace: namespace), decoding: TypedList<T>.self)
        return (list.items, list.resourceVersion)
    }

    /// One object, decoded; nil when it does not exist.
    public func get<T: Resource>(_ type: T.Type, namespace: String?, name: String) async throws -> T? {
        do {
            return try await send(.GET, Self.objectPath(T.resourceKind, namespace: namespace, name: name), decoding: T.self)
        } catch let error as APIError where error.status == 404 {
            return nil
        }
    }

    /// Creates or updates all `documents` in one transaction; namespace nil lets the server default it.
    /// Invalid documents make an `APIError` with status 422 whose details name the document index.
    public func apply(_ documents: [JSONValue], namespace: String?) async throws -> [ApplyOutcome] {
        struct Answer: Decodable { var items: [ApplyOutcome] }
        let query = namespace.map { [("namespace", $0)] } ?? []
        let body = try Self.encode(JSONValue.object(["items": .array(documents)]))
        return try await send(.POST, "/api/v1/apply", query: query, body: body, decoding: Answer.self).items
    }

    /// Deletes an object (replicas gracefully unless `final`); a missing one is an `APIError` 404.
    public func delete(_ kind: ResourceKind, namespace: String?, name: String, final: Bool = false) async throws {
        try await send(.DELETE, Self.objectPath(kind, namespace: namespace, name: name), query: final ? [("final", "true")] : [])
    }

    /// Sets a deployment's desired replica count.
    public func scale(namespace: String, deployment: String, replicas: Int) async throws {
        let body = try Self.encode(JSONValue.object(["replicas": .int(Int64(replicas))]))
        try await send(.PUT, Self.objectPath(.deployment, namespace: namespace, name: deployment) + "/scale", body: body)
    }

    /// Acts on a deployment's rollout: `promote` (`full`: skip the remaining steps), `abort`, `pause`,
    /// `resume` or `undo` (to `toRevision`, else the previous one). Returns the deployment as changed.
    public func rollout(namespace: String, deployment: String, action: String, full: Bool = false, toRevision: Int? = nil) async throws -> Deployment {
        var body: [String: JSONValue] = ["action": .string(action)]
        if full { body["full"] = .bool(true) }
        if let toRevision { body["toRevision"] = .int(Int64(toRevision)) }
        return try await send(.POST, Self.objectPath(.deployment, namespace: namespace, name: deployment) + "/rollout",
                              body: try Self.encode(JSONValue.object(body)), decoding: Deployment.self)
    }

    /// Reports a replica's status (agents).
    public func updateReplicaStatus(namespace: String, name: String, status: ReplicaStatus) async throws {
        try await send(.PUT, Self.objectPath(.replica, namespace: namespace, name: name) + "/status", body: try Self.encode(status))
    }

    /// Has the cluster CA certify `csrPEM` for the SPIFFE ID `identity` (agents).
    public func signCertificate(csrPEM: String, identity: String) async throws -> IssuedCertificate {
        try await send(.POST, "/api/v1/certificates", body: try Self.encode(CertificateRequest(csr: csrPEM, identity: identity)),
                       decoding: IssuedCertificate.self)
    }

    /// The mesh's trust roots and bundle.
    public func trustBundle() async throws -> TrustBundleStatus {
        try await send(.GET, "/api/v1/ca", decoding: TrustBundleStatus.self)
    }

    /// One step of a root rotation: `rotate` (a new root joins the bundle), `activate` (it signs from
    /// now on) or `retire` (the old roots leave the bundle).
    public func rotateTrust(_ step: String) async throws -> TrustBundleStatus {
        try await send(.POST, "/api/v1/ca/\(step)", decoding: TrustBundleStatus.self)
    }

    /// Registers a node or renews its heartbeat (agents).
    public func putNode(_ node: Node) async throws {
        try await send(.PUT, Self.objectPath(.node, namespace: nil, name: node.metadata.name), body: try Self.encode(node))
    }

    // MARK: - Paths

    static func collectionPath(_ kind: ResourceKind, namespace: String?) -> String {
        if kind.isNamespaced, let namespace {
            return "/api/v1/namespaces/\(escape(namespace))/\(kind.plural)"
        }
        return "/api/v1/\(kind.plural)"
    }

    static func objectPath(_ kind: ResourceKind, namespace: String?, name: String) -> String {
        if kind.isNamespaced {
            return "/api/v1/namespaces/\(escape(namespace ?? defaultNamespace))/\(kind.plural)/\(escape(name))"
        }
        return "/api/v1/\(kind.plural)/\(escape(name))"
    }

    static func escape(_ component: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return component.addingPercentEncoding(withAllowedCharacters: allowed) ?? component
    }

    func url(_ path: String, query: [(String, String)]) -> String {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        }
        return url
    }

    // MARK: - Transport

    enum Method: String, Sendable {
        case GET, POST, PUT, DELETE
    }

    static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(bytes: try encoder.encode(value))
    }

    func makeRequest(_ method: Method, _ path: String, query: [(String, String)] = [], body: ByteBuffer? = nil,
                     accept: String = "application/json") -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url(path, query: query))
        switch method {
        case .GET: request.method = .GET
        case .POST: request.method = .POST
        case .PUT: request.method = .PUT
        case .DELETE: request.method = .DELETE
        }
        request.headers.add(name: "Authorization", value: "Bearer \(config.token)")
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "weft-client")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        return request
    }

    /// Sends a request and decodes a 2xx JSON answer; anything else becomes an `APIError` or a
    /// `ClientError` that says the server is unreachable.
    func send<T: Decodable>(_ method: Method, _ path: String, query: [(String, String)] = [], body: ByteBuffer? = nil,
                            decoding type: T.Type) async throws -> T {
        let bytes = try await send(method, path, query: query, body: body)
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes.readableBytesView))
        } catch {
            throw ClientError("unexpected answer from the API server to \(method.rawValue) \(path): \(error)")
        }
    }

    /// Sends a request and returns the body of a 2xx answer.
    @discardableResult
    func send(_ method: Method, _ path: String, query: [(String, String)] = [], body: ByteBuffer? = nil) async throws -> ByteBuffer {
        let request = makeRequest(method, path, query: query, body: body)
        do {
            let response = try await http.execute(request, timeout: Self.requestTimeout)
            let bytes = try await response.body.collect(upTo: Self.maxBody)
            guard (200..<300).contains(response.status.code) else {
                throw APIError.from(status: Int(response.status.code), reason: response.status.reasonPhrase, body: Array(bytes.readableBytesView))
            }
            return bytes
        } catch {
            throw translate(error)
        }
    }

    /// Opens a streaming request and checks its status; the caller reads the body.
    func openStream(_ path: String, query: [(String, String)], client: HTTPClient, accept: String) async throws -> HTTPClientResponse {
        let request = makeRequest(.GET, path, query: query, accept: accept)
        do {
            let response = try await client.execute(request, deadline: .distantFuture)
            guard (200..<300).contains(response.status.code) else {
                let bytes = try await response.body.collect(upTo: Self.maxBody)
                throw APIError.from(status: Int(response.status.code), reason: response.status.reasonPhrase, body: Array(bytes.readableBytesView))
            }
            return response
        } catch {
            throw translate(error)
        }
    }

    /// Turns transport failures into one readable sentence; API errors and cancellation pass through.
    func translate(_ error: any Error) -> any Error {
        TransportFailure.describe(error, server: baseURL)
    }
}

/// A list answer decoded as objects of one kind.
struct TypedList<T: Decodable>: Decodable {
    var items: [T]
    var resourceVersion: String
}
