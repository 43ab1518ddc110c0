import Logging
import WeftClient
import WeftCore
import WeftProxy

/// Follows the mesh's trust roots during a rotation: polls `GET /api/v1/ca`; a new bundle goes into
/// the tunnel's TLS contexts (for new connections) and every `bundle.pem` on the node; a new signing
/// root has the node renew its own and its workloads' certificates at once. Between rotations each poll
/// finds nothing to do. While the API is unreachable the node keeps its last view.
struct TrustFollower: Sendable {
    let client: APIClient
    let tls: MeshTLS
    let node: NodeIdentity?
    let workloads: WorkloadIdentities?
    let interval: Duration
    let logger: Logger

    func run() async {
        var signer: String?
        while !Task.isCancelled {
            if let status = try? await client.trustBundle() {
                await apply(status, previousSigner: signer)
                signer = status.activeFingerprint
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func apply(_ status: TrustBundleStatus, previousSigner: String?) async {
        if !tls.trustBundlePEM.isEmpty, tls.trustBundlePEM != status.bundle {
            do {
                try tls.updateTrustBundle(status.bundle)
                try await node?.writeBundle(status.bundle)
                await workloads?.writeBundles(status.bundle)
                logger.notice("mesh trust bundle updated", metadata: ["roots": "\(status.roots.map(\.id))"])
            } catch {
                logger.error("cannot apply the new trust bundle", metadata: ["error": "\(error)"])
            }
        }
        if let previousSigner, previousSigner != status.activeFingerprint {
            logger.notice("mesh signing root changed; renewing certificates", metadata: ["root": "\(status.roots.last?.id ?? "?")"])
            await node?.renewSoon()
            await workloads?.renewAll()
        }
    }
}
