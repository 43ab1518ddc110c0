import Foundation
import Hummingbird
import Logging
import NIOCore
import WeftCore

/// `POST /api/v1/namespaces/{ns}/deployments/{name}/rollout`: promote, abort, pause, resume or undo a
/// deployment's rollout (docs/api.md). Admin only: `AccessPolicy` denies nodes every POST but
/// certificates.
struct RolloutRoutes: Sendable {
    let registry: Registry
    let logger: Logger
    static let maxBody = 64 * 1024

    /// The request body: `{"action": "promote", "full": true}`, `{"action": "undo", "toRevision": 3}`.
    struct Body: Decodable, Sendable {
        var action: String
        var full: Bool?
        var toRevision: Int?
    }

    func register(on api: RouterGroup<APIRequestContext>) {
        api.post("namespaces/:namespace/deployments/:name/rollout") { request, context in
            let namespace = try context.parameters.require("namespace")
            let name = try context.parameters.require("name")
            let buffer: ByteBuffer
            do {
                buffer = try await request.body.collect(upTo: Self.maxBody)
            } catch {
                throw APIFailure(code: 413, message: "request body larger than \(Self.maxBody / 1024) KiB")
            }
            let action = try Self.action(from: Data(buffer.readableBytesView))
            let updated = try await registry.rollout(namespace: namespace, name: name, action: action)
            logger.info("rollout action recorded", metadata: ["deployment": "\(namespace)/\(name)", "action": "\(action)"])
            return try JSONResponse.make(updated)
        }
    }

    /// The action a request body asks for; 422 with the field when the body is not one.
    static func action(from data: Data) throws -> RolloutAction {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: data)
        } catch let error as DecodingError {
            let field = StrictDecoder.fieldError(from: error)
            throw APIFailure(code: 422, message: "invalid rollout request: \(field); send {\"action\": \"\(RolloutAction.names.joined(separator: "|"))\", \"full\": bool, \"toRevision\": int}")
        }
        do {
            return try RolloutAction(name: body.action, full: body.full, toRevision: body.toRevision)
        } catch {
            throw APIFailure(error)
        }
    }
}

extension APIFailure {
    /// A rollout action's refusal with its code. The message already names the field, if any, so it
    /// carries no details that would repeat it.
    init(_ error: RolloutActionError) {
        self.init(code: error.code, message: error.description)
    }
}
