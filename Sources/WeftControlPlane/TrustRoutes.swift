import Hummingbird
import Logging
import WeftCore
import WeftPKI

/// `/api/v1/ca`: the mesh's trust roots, and the three steps of a rotation (docs/api.md).
struct TrustRoutes: Sendable {
    let signer: CertificateSigner?
    let logger: Logger

    func register(on api: RouterGroup<APIRequestContext>) {
        api.get("ca") { _, _ in try JSONResponse.make(try requireSigner().status) }
        api.post("ca/rotate") { _, _ in try step("prepared a new root") { try $0.prepare() } }
        api.post("ca/activate") { _, _ in try step("activated the newest root") { try $0.activate() } }
        api.post("ca/retire") { _, _ in try step("retired the old roots") { try $0.retire() } }
    }

    private func requireSigner() throws -> CertificateSigner {
        guard let signer else { throw APIFailure(code: 404, message: "this server signs no certificates") }
        return signer
    }

    private func step(_ what: String, _ body: (MeshAuthorities) throws -> Any) throws -> Response {
        let signer = try requireSigner()
        guard let authorities = signer.authorities else {
            throw APIFailure(code: 409, message: "this server's roots cannot rotate")
        }
        do {
            _ = try body(authorities)
        } catch let error as MeshAuthorities.RotationError {
            throw APIFailure(code: 409, message: error.description)
        }
        logger.notice("mesh trust: \(what)", metadata: ["roots": "\(authorities.all.map { "\($0.id)=\($0.state.rawValue)" })"])
        return try JSONResponse.make(signer.status)
    }
}
