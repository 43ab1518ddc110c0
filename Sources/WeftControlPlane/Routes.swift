import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import WeftCore
import WeftPKI
import WeftStore

/// The API's routes (docs/api.md).
struct Routes: Sendable {
    let registry: Registry
    let logs: (any ReplicaLogSource)?
    let signer: CertificateSigner?
    let enrollment: NodeEnrollment?
    let logger: Logger
    static let maxBody = 8 * 1024 * 1024
    static let bookmarkInterval = Duration.seconds(5)

    func register(on api: RouterGroup<APIRequestContext>) {
        api.post("apply") { request, context in try await apply(request, context) }
        TrustRoutes(signer: signer, logger: logger).register(on: api)
        RolloutRoutes(registry: registry, logger: logger).register(on: api)
        api.post("certificates") { request, context in
            guard let signer else { throw APIFailure(code: 404, message: "this server signs no certificates") }
            let body = try await decodeBody(CertificateRequest.self, request)
            try context.principal.mayRequest(identity: body.identity)
            try await mayCertifyWorkload(body.identity, for: context.principal)
            let issued = try signer.sign(body)
            logger.info("certificate issued", metadata: ["identity": "\(body.identity)", "notAfter": "\(issued.notAfter)"])
            return try JSONResponse.make(issued, status: .created)
        }
        registerEnrollment(on: api)
        // Every path is spelled out per kind: the router does not backtrack from a literal segment
        // (`deployments` in `.../deployments/:name/scale`) to a parameter (`:plural`).
        for kind in ResourceKind.allCases {
            let plural = kind.plural
            api.get(RouterPath(plural)) { request, _ in try await listOrWatch(kind, namespace: nil, request) }
            if kind.isNamespaced {
                let collection = "namespaces/:namespace/\(plural)"
                api.get(RouterPath(collection)) { request, context in
                    try await listOrWatch(kind, namespace: try context.parameters.require("namespace"), request)
                }
                api.get(RouterPath(collection + "/:name")) { _, context in
                    let (namespace, name) = try namespacedName(context)
                    if kind == .secret { try await mayRead(secret: name, namespace: namespace, principal: context.principal) }
                    return try JSONResponse.make(try await registry.get(kind, namespace: namespace, name: name))
                }
                api.delete(RouterPath(collection + "/:name")) { request, context in
                    let (namespace, name) = try namespacedName(context)
                    if kind == .replica, context.principal != .admin, let (replica, _) = try await registry.typed(Replica.self, namespace: namespace, name: name) {
                        try context.principal.mayChange(replica)
                    }
                    let final = request.uri.queryParameters.get("final") == "true"
                    return try JSONResponse.make(try await registry.delete(kind, namespace: namespace, name: name, final: final))
                }
            } else {
                api.get(RouterPath(plural + "/:name")) { _, context in
                    try JSONResponse.make(try await registry.get(kind, namespace: "", name: try context.parameters.require("name")))
                }
                api.delete(RouterPath(plural + "/:name")) { _, context in
                    try JSONResponse.make(try await registry.delete(kind, namespace: "", name: try context.parameters.require("name")))
                }
            }
        }
        api.put("nodes/:name") { request, context in
            var node: Node = try await decodeBody(Node.self, request)
            node.metadata.name = try context.parameters.require("name")
            return try JSONResponse.make(try await registry.putNode(node))
        }
        api.put("namespaces/:namespace/deployments/:name/scale") { request, context in
            struct Scale: Codable { var replicas: Int }
            let scale = try await decodeBody(Scale.self, request)
            return try JSONResponse.make(try await registry.scale(
                namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"), replicas: scale.replicas))
        }
        api.put("namespaces/:namespace/replicas/:name/status") { request, context in
            let status = try await decodeBody(ReplicaStatus.self, request)
            let (namespace, name) = try namespacedName(context)
            if context.principal != .admin, let (replica, _) = try await registry.typed(Replica.self, namespace: namespace, name: name) {
                try context.principal.mayChange(replica)
            }
            return try JSONResponse.make(try await registry.updateReplicaStatus(namespace: namespace, name: name, status: status))
        }
        api.get("namespaces/:namespace/replicas/:name/log") { request, context in
            guard let logs else { throw APIFailure(code: 404, message: "this server runs no agent, so it has no replica logs") }
            let namespace = try context.parameters.require("namespace")
            let name = try context.parameters.require("name")
            _ = try await registry.get(.replica, namespace: namespace, name: name)
            let tail = request.uri.queryParameters.get("tail").flatMap { Int($0) }
            let follow = request.uri.queryParameters.get("follow") == "true"
            let stream = try logs.log(namespace: namespace, replica: name, tail: tail, follow: follow)
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody { writer in
                for try await chunk in stream.cancelOnGracefulShutdown() {
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            })
        }
    }

    /// A node reads a Secret only when a replica assigned to it uses it (env, envFrom or a volume).
    private func mayRead(secret name: String, namespace: String, principal: Principal) async throws {
        guard case .node(let node) = principal else { return }
        let replicas = try await registry.typedList(Replica.self, namespace: namespace)
        guard replicas.contains(where: { $0.object.spec.node == node && ConfigReferences($0.object.spec.template).secrets[name] != nil }) else {
            throw APIFailure(code: 403, message: "\(principal) may not read secret \(namespace)/\(name): no replica on node \(node) uses it")
        }
    }

    // MARK: - Joining

    /// Join tokens (admin) and joining (join tokens); `AuthenticationMiddleware` enforces who may call which.
    /// A node gets a workload certificate only for a service account that one of its own replicas runs
    /// as, so a node cannot speak for workloads it does not host.
    private func mayCertifyWorkload(_ identity: String, for principal: Principal) async throws {
        guard case .node(let node) = principal, let id = try? SPIFFEID(parsing: identity), let workload = id.workload else { return }
        let replicas = try await registry.typedList(Replica.self, namespace: workload.namespace)
        guard replicas.contains(where: { $0.object.spec.node == node && $0.object.serviceAccount == workload.serviceAccount }) else {
            throw APIFailure(code: 403, message: "\(principal) may not get a certificate for \(identity): no replica on node \(node) runs as service account \(workload.namespace)/\(workload.serviceAccount)")
        }
    }

    private func registerEnrollment(on api: RouterGroup<APIRequestContext>) {
        @Sendable func require() throws -> NodeEnrollment {
            guard let enrollment else { throw APIFailure(code: 404, message: "this server does not take joining nodes") }
            return enrollment
        }
        api.post("tokens") { request, _ in
            let body = try await decodeBody(JoinTokenRequest.self, request)
            let created = try await require().createToken(body)
            logger.info("join token created", metadata: ["id": "\(created.id)", "expires": "\(created.expires)"])
            return try JSONResponse.make(created, status: .created)
        }
        api.get("tokens") { _, _ in
            struct Answer: Encodable { var items: [JoinTokenInfo] }
            return try JSONResponse.make(Answer(items: try await require().listTokens()))
        }
        api.delete("tokens/:id") { _, context in
            let revoked = try await require().revokeToken(id: try context.parameters.require("id"))
            logger.info("join token revoked", metadata: ["id": "\(revoked.id)"])
            return try JSONResponse.make(revoked)
        }
        api.post("join") { request, context in
            guard case .joinToken(let id) = context.principal else {
                throw APIFailure(code: 401, message: "POST /api/v1/join needs a join token")
            }
            let body = try await decodeBody(JoinRequest.self, request)
            let joined = try await require().join(body, tokenID: id)
            logger.info("node joined", metadata: ["node": "\(joined.nodeName)", "token": "\(id)"])
            return try JSONResponse.make(joined, status: .created)
        }
    }

    // MARK: - Handlers

    private func apply(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        struct Body: Decodable { var items: [JSONValue] }
        let body = try await decodeBody(Body.self, request)
        let namespace = request.uri.queryParameters.get("namespace").map { String($0) } ?? defaultNamespace
        if let problem = Validation.dnsLabelProblem(namespace) {
            throw APIFailure.badRequest("namespace: \(problem)")
        }
        struct Answer: Encodable { var items: [ApplyOutcome] }
        return try JSONResponse.make(Answer(items: try await registry.apply(body.items, namespace: namespace)))
    }

    private func listOrWatch(_ kind: ResourceKind, namespace: String?, _ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        if query.get("watch") == "true" || query.get("watch") == "1" {
            let from: Int64?
            if let text = query.get("resourceVersion"), !text.isEmpty {
                guard let value = Int64(text), value >= 0 else { throw APIFailure.badRequest("resourceVersion must be a non-negative integer") }
                from = value
            } else {
                from = nil
            }
            return watchResponse(kind, namespace: namespace, from: from, node: query.get("node").map { String($0) })
        }
        let (items, revision) = try await registry.list(kind, namespace: namespace)
        struct ListBody: Encodable {
            var kind = "List"
            var apiVersion = weftAPIVersion
            var resourceVersion: String
            var items: [JSONValue]
        }
        return try JSONResponse.make(ListBody(resourceVersion: String(revision), items: items))
    }

    private enum WatchLine: Sendable {
        case event(String, StoredObject)
        case bookmark
    }

    private func watchResponse(_ kind: ResourceKind, namespace: String?, from: Int64?, node: String?) -> Response {
        let registry = self.registry
        let namespace = kind.isNamespaced ? namespace : nil
        let body = ResponseBody { writer in
            var revision: Int64
            var initial: [StoredObject] = []
            if let from {
                revision = from
            } else {
                (initial, revision) = try await registry.store.list(kind: kind.rawValue, namespace: namespace)
            }
            let (lines, sink) = AsyncStream.makeStream(of: WatchLine.self, bufferingPolicy: .bufferingNewest(10_000))
            let stream = registry.store.watch(kind: kind.rawValue, namespace: namespace, after: revision)
            let pump = Task {
                do {
                    for try await event in stream { sink.yield(.event(event.type.rawValue, event.object)) }
                    sink.finish()
                } catch let error as StoreError where error.code == .compacted {
                    sink.yield(.event("ERROR", StoredObject(key: ObjectKey(kind: "", namespace: "", name: ""), revision: -410, createdRevision: 0,
                                                           data: Data(error.message.utf8))))
                    sink.finish()
                } catch {
                    sink.finish()
                }
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.bookmarkInterval)
                    sink.yield(.bookmark)
                }
            }
            defer {
                pump.cancel()
                ticker.cancel()
            }
            for stored in initial where Self.matches(stored, node: node) {
                try await writer.write(try Self.eventLine("ADDED", stored))
            }
            try await writer.write(Self.bookmarkLine(revision))
            for await line in lines.cancelOnGracefulShutdown() {
                switch line {
                case .bookmark:
                    try await writer.write(Self.bookmarkLine(revision))
                case .event("ERROR", let stored):
                    try await writer.write(Self.errorLine(code: 410, message: String(decoding: stored.data, as: UTF8.self)))
                    try await writer.finish(nil)
                    return
                case .event(let type, let stored):
                    revision = stored.revision
                    if Self.matches(stored, node: node) {
                        try await writer.write(try Self.eventLine(type, stored))
                    }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"], body: body)
    }

    private static func matches(_ stored: StoredObject, node: String?) -> Bool {
        guard let node, stored.key.kind == ResourceKind.replica.rawValue else { return true }
        guard let replica = try? JSONDecoder().decode(Replica.self, from: stored.data) else { return false }
        return replica.spec.node == node
    }

    private static func eventLine(_ type: String, _ stored: StoredObject) throws -> ByteBuffer {
        struct Event: Encodable { var type: String; var object: JSONValue }
        var data = try JSONResponse.encoder.encode(Event(type: type, object: try ResourceCodec.json(stored)))
        data.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: data)
    }

    private static func bookmarkLine(_ revision: Int64) -> ByteBuffer {
        ByteBuffer(string: #"{"object":{"metadata":{"resourceVersion":"\#(revision)"}},"type":"BOOKMARK"}"# + "\n")
    }

    private static func errorLine(code: Int, message: String) -> ByteBuffer {
        struct Event: Encodable {
            struct Status: Encodable { var code: Int; var message: String }
            var type = "ERROR"
            var object: Status
        }
        var data = (try? JSONResponse.encoder.encode(Event(object: .init(code: code, message: message)))) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: data)
    }

    // MARK: - Helpers

    private func namespacedName(_ context: APIRequestContext) throws -> (String, String) {
        (try context.parameters.require("namespace"), try context.parameters.require("name"))
    }

    private func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxBody)
        } catch {
            throw APIFailure(code: 413, message: "request body larger than \(Self.maxBody / 1024 / 1024) MiB")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIFailure.badRequest("invalid request body: \(StrictDecoder.fieldError(from: error))")
        }
    }
}
