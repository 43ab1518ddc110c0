import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import WeftCore
import WeftPKI

/// Where replicas' logs come from; the node agent that runs them provides it.
public protocol ReplicaLogSource: Sendable {
    /// The replica's log: the last `tail` lines (all when nil), then, with `follow`, new output as it
    /// is written. Throws `APIFailure` 404 when there is no log.
    func log(namespace: String, replica: String, tail: Int?, follow: Bool) throws -> AsyncThrowingStream<ByteBuffer, any Error>
}

/// Settings of the HTTPS API server.
public struct APIServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var certificatePath: String
    public var keyPath: String
    public var token: String
    /// Served without authentication at `GET /api/v1/cluster-info`, for agents that join; nil serves 404.
    public var clusterInfo: ClusterInfo?

    public init(host: String, port: Int, certificatePath: String, keyPath: String, token: String, clusterInfo: ClusterInfo? = nil) {
        self.host = host
        self.port = port
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.token = token
        self.clusterInfo = clusterInfo
    }
}

/// The request context of the API: Hummingbird's core storage and who sent the request.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authentication middleware before any handler but the two open ones runs.
    public var principal: Principal

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = .joinToken(id: "")
    }
}

/// The HTTPS JSON API (docs/api.md) over the registry.
public enum APIServer {
    /// Builds the server as a `Service`. `onListening` receives the bound address (the real port when
    /// asked for port 0).
    ///
    /// With `enrollment`, nodes can join with join tokens and use node credentials (docs/api.md#joining);
    /// without it only the admin token authenticates.
    public static func make(
        configuration: APIServerConfiguration, registry: Registry, logs: (any ReplicaLogSource)?,
        signer: CertificateSigner? = nil, enrollment: NodeEnrollment? = nil, logger: Logger,
        onListening: @escaping @Sendable (SocketAddress) async -> Void
    ) throws -> some ApplicationProtocol {
        let router = makeRouter(configuration: configuration, registry: registry, logs: logs, signer: signer, enrollment: enrollment, logger: logger)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(configuration.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: configuration.keyPath, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        return Application(
            router: router,
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "weft"),
            onServerRunning: { channel in
                if let address = channel.localAddress { await onListening(address) }
            },
            logger: logger)
    }

    /// Every route with its middleware, without the listener: `make` serves it over TLS, tests over plain
    /// HTTP on loopback.
    static func makeRouter(configuration: APIServerConfiguration, registry: Registry, logs: (any ReplicaLogSource)?,
                           signer: CertificateSigner?, enrollment: NodeEnrollment?, logger: Logger) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        // The only open routes. A router middleware wraps the routes added after it and every request that
        // matches no route, so these two are registered before authentication, and a client without a
        // credential gets 401 for every other path and method — it cannot tell which routes exist.
        router.get("healthz") { _, _ in "ok\n" }
        // Before any credential: a joining agent checks this CA against its token's pin. Public data only.
        router.get("api/v1/cluster-info") { _, _ in
            guard let info = configuration.clusterInfo else { throw APIFailure(code: 404, message: "this server does not take joining nodes") }
            return try JSONResponse.make(info)
        }
        router.add(middleware: AuthenticationMiddleware(token: configuration.token, enrollment: enrollment))
        let api = router.group("api/v1")
        let routes = Routes(registry: registry, logs: logs, signer: signer, enrollment: enrollment, logger: logger)
        routes.register(on: api)
        return router
    }
}

/// Finds who sent each request from its bearer token — the admin token, a node credential or a join
/// token — and refuses what that principal may not do (``AccessPolicy``): 401 without a valid credential,
/// 403 for a valid one that is not allowed.
struct AuthenticationMiddleware: RouterMiddleware {
    let token: String
    let enrollment: NodeEnrollment?

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIFailure(code: 401, message: "missing bearer token; use the token from admin.yaml")
        }
        let presented = header.dropFirst("Bearer ".count)
        let principal: Principal
        if BearerToken.matches(presented, token) {
            principal = .admin
        } else if let enrollment, let node = try await enrollment.authenticateNode(presented) {
            principal = .node(node)
        } else if let enrollment, let id = try await enrollment.authenticateJoinToken(String(presented)) {
            principal = .joinToken(id: id)
        } else {
            throw APIFailure(code: 401, message: "missing or invalid bearer token; use the token from admin.yaml")
        }
        var path = request.uri.path.split(separator: "/")
        if path.starts(with: ["api", "v1"]) { path.removeFirst(2) }
        let route = "\(request.method.rawValue) \(request.uri.path)"
        switch AccessPolicy.decide(principal, method: request.method.rawValue, path: path, route: route) {
        case .allow, .checkObject:
            var context = context
            context.principal = principal
            return try await next(request, context)
        case .deny(let code, let message):
            throw APIFailure(code: code, message: message)
        }
    }
}

/// Turns every error into the API's JSON error body.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let failure as APIFailure {
            return JSONResponse.error(failure)
        } catch let error as HTTPError {
            return JSONResponse.error(APIFailure(code: Int(error.status.code), message: error.body ?? error.status.reasonPhrase))
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return JSONResponse.error(APIFailure(code: 500, message: "internal error: \(error)"))
        }
    }
}

enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ failure: APIFailure) -> Response {
        struct Body: Encodable {
            struct Inner: Encodable {
                var code: Int
                var message: String
                var details: [APIFailure.Detail]?
            }
            var error: Inner
        }
        let body = Body(error: .init(code: failure.code, message: failure.message, details: failure.details.isEmpty ? nil : failure.details))
        let data = (try? encoder.encode(body)) ?? Data()
        var response = Response(status: .init(code: failure.code), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        if failure.code == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}
