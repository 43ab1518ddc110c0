import Foundation
import Logging
import WeftClient
import WeftCore
import WeftPKI

/// A node's membership in a cluster, as `weft agent` keeps it in its state directory:
///
/// - `node.yaml` (0600): the server URL, the cluster CA (pinned at join) and the node credential
///   `weftnode1.<node>.<secret>`, in the format of `admin.yaml` — so `weft --config node.yaml get nodes`
///   works with the node's (limited) rights. Its presence means "joined": the agent uses it on every start
///   and needs no join token again.
/// - `identity/node.key` (0600), `node.crt`, `bundle.pem`: the node's SPIFFE identity, first issued by
///   the join and renewed by the running agent.
public enum NodeMembership {
    /// `<stateDirectory>/node.yaml`.
    public static func credentialPath(stateDirectory: String) -> String {
        (stateDirectory as NSString).appendingPathComponent("node.yaml")
    }

    /// The stored membership and the node it is for, or nil before the first join.
    public static func load(stateDirectory: String) throws -> (config: ClientConfig, node: String)? {
        let path = credentialPath(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let config = try ClientConfig.load(path: path)
        guard let credential = NodeCredential(parsing: config.token) else {
            throw ClientError("\(path) holds no node credential (weftnode1.<node>.<secret>); delete it and join again with `weft agent --server URL --token TOKEN`")
        }
        return (config, credential.node)
    }

    /// Joins the cluster at `server` with `token` as `nodeName`:
    /// 1. fetches the cluster info without trusting the server and checks its CA against the token's pin
    ///    (a mismatch throws before the token or anything about the node is sent);
    /// 2. over TLS verified against that CA, sends the join token and a CSR for the node identity, made
    ///    with a key that stays here;
    /// 3. stores the identity and `node.yaml`.
    public static func join(server: String, token: JoinToken, nodeName: String, stateDirectory: String, logger: Logger) async throws -> ClientConfig {
        let info = try await ClusterDiscovery.fetchUnverified(server: server)
        try CAPin.verify(pem: info.certificateAuthority, expected: token.caHash)
        let request = try IdentityRequest(identity: try SPIFFEID.node(nodeName, trustDomain: info.trustDomain))
        let joining = try APIClient(config: ClientConfig(server: server, token: token.description, certificateAuthority: info.certificateAuthority))
        let answer: JoinResponse
        do {
            answer = try await joining.join(JoinRequest(nodeName: nodeName, csr: try request.csrPEM()))
            try? await joining.shutdown()
        } catch {
            try? await joining.shutdown()
            throw error
        }
        guard NodeCredential(parsing: answer.credential)?.node == nodeName else {
            throw ClientError("the server answered the join with a credential for another node than \"\(nodeName)\"")
        }
        let identity = (stateDirectory as NSString).appendingPathComponent("identity")
        try SecureFile.createDirectory(stateDirectory, mode: 0o700)
        try SecureFile.createDirectory(identity, mode: 0o700)
        try SecureFile.write(Data(try request.privateKey.serializeAsPEM().pemString.utf8), to: (identity as NSString).appendingPathComponent("node.key"), mode: 0o600)
        try SecureFile.write(Data(answer.certificate.certificate.utf8), to: (identity as NSString).appendingPathComponent("node.crt"), mode: 0o644)
        try SecureFile.write(Data(answer.certificate.trustBundle.joined().utf8), to: (identity as NSString).appendingPathComponent("bundle.pem"), mode: 0o644)
        let config = ClientConfig(server: server, token: answer.credential, certificateAuthority: info.certificateAuthority)
        try config.write(to: credentialPath(stateDirectory: stateDirectory))
        logger.info("joined the cluster", metadata: ["node": "\(nodeName)", "server": "\(server)", "token": "\(token.id)"])
        return config
    }
}
