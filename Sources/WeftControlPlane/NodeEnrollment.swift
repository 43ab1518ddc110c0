import Foundation
import WeftCore
import WeftPKI
import WeftStore

/// How nodes join the cluster and what they authenticate with afterwards.
///
/// Join tokens (`weft token create`) are `JoinToken` objects in the store, one per token id, holding only
/// the SHA-256 of the secret, its expiry and the nodes that used it; revoking deletes the object. A join
/// (`POST /api/v1/join`) checks the token, signs the node's CSR for `spiffe://<td>/node/<name>` and
/// issues a node credential (`weftnode1.<node>.<secret>`), stored as a `NodeCredential` object named after
/// the node, again as a hash only. The credential lives as long as the node object: deleting the node
/// (`weft delete node NAME`) revokes it, and joining again replaces it.
public struct NodeEnrollment: Sendable {
    static let tokenKind = "JoinToken"
    static let credentialKind = "NodeCredential"
    /// Join tokens live at least a minute and at most a year.
    public static let ttlRange = 60...(366 * 86_400)

    let registry: Registry
    let signer: CertificateSigner
    /// The pin every token carries: the hash of the public key of the CA the API is served with.
    let caHash: String

    public init(registry: Registry, signer: CertificateSigner, clusterAuthority: CertificateAuthority) throws {
        self.registry = registry
        self.signer = signer
        self.caHash = try CAPin.hash(of: clusterAuthority.certificate)
    }

    struct TokenRecord: Codable, Sendable {
        var id: String
        var secretSHA256: String
        var description: String?
        var created: String
        var expires: String
        var usedBy: [String]

        var info: JoinTokenInfo {
            JoinTokenInfo(id: id, description: description, created: created, expires: expires, usedBy: usedBy)
        }
    }

    struct CredentialRecord: Codable, Sendable {
        var node: String
        var secretSHA256: String
        var created: String
        /// The id of the join token it was issued for.
        var joinedWith: String
    }

    static func tokenKey(_ id: String) -> ObjectKey { ObjectKey(kind: tokenKind, namespace: "", name: id) }
    static func credentialKey(_ node: String) -> ObjectKey { ObjectKey(kind: credentialKind, namespace: "", name: node) }

    // MARK: - Tokens

    /// Makes a token that expires `ttlSeconds` from `now`; the answer is the only place its secret appears.
    public func createToken(_ request: JoinTokenRequest, now: Date = Date()) async throws -> JoinTokenInfo {
        guard Self.ttlRange.contains(request.ttlSeconds) else {
            throw APIFailure(code: 422, message: "ttlSeconds: \(request.ttlSeconds) is outside 60 s to 366 days",
                             details: [InvalidField(path: "ttlSeconds", message: "must be between 60 and \(Self.ttlRange.upperBound)")])
        }
        if let description = request.description, description.count > 256 {
            throw APIFailure(code: 422, message: "description: longer than 256 characters",
                             details: [InvalidField(path: "description", message: "at most 256 characters")])
        }
        let token = try JoinToken.generate(caHash: caHash)
        let record = TokenRecord(id: token.id, secretSHA256: token.secretHash, description: request.description,
                                 created: ResourceCodec.timestamp(now), expires: ResourceCodec.timestamp(now + TimeInterval(request.ttlSeconds)),
                                 usedBy: [])
        try await registry.store.commit([.create(Self.tokenKey(token.id), try Self.encode(record))])
        var info = record.info
        info.token = token.description
        return info
    }

    /// Every token (expired ones too, until revoked), oldest first; never a secret.
    public func listTokens() async throws -> [JoinTokenInfo] {
        let (items, _) = try await registry.store.list(kind: Self.tokenKind, namespace: nil)
        return try items.map { try JSONDecoder().decode(TokenRecord.self, from: $0.data) }
            .sorted { ($0.created, $0.id) < ($1.created, $1.id) }.map(\.info)
    }

    /// Deletes a token: it authenticates nothing from now on. Nodes that joined with it keep their credentials.
    public func revokeToken(id: String) async throws -> JoinTokenInfo {
        try await registry.withConflictRetry {
            guard let stored = try await registry.store.get(Self.tokenKey(id)) else {
                throw APIFailure(code: 404, message: "join token \"\(id)\" not found; `weft token list` shows the tokens")
            }
            try await registry.store.commit([.delete(stored.key, ifRevision: stored.revision)])
            return try JSONDecoder().decode(TokenRecord.self, from: stored.data).info
        }
    }

    // MARK: - Authentication

    /// The token's id if `presented` is a join token the store knows, unexpired at `now`; nil when it does
    /// not even look like one. Throws 401 for an unknown, wrong, expired or revoked token.
    func authenticateJoinToken(_ presented: String, now: Date = Date()) async throws -> String? {
        guard presented.hasPrefix(JoinToken.prefix + ".") else { return nil }
        let refused = APIFailure(code: 401, message: "join token unknown, expired or revoked; create a new one with `weft token create`")
        guard let token = try? JoinToken(parsing: presented),
              let stored = try await registry.store.get(Self.tokenKey(token.id)),
              let record = try? JSONDecoder().decode(TokenRecord.self, from: stored.data),
              SecretHash.matches(token.secret, storedHash: record.secretSHA256) else { throw refused }
        guard let expires = try? Date(record.expires, strategy: .iso8601), now < expires else {
            throw APIFailure(code: 401, message: "join token \(token.id) expired at \(record.expires); create a new one with `weft token create`")
        }
        return token.id
    }

    /// The node a presented node credential belongs to; nil when it is not shaped like one. Throws 401
    /// for a credential the store does not hold (wrong, or revoked with its node).
    func authenticateNode(_ presented: some StringProtocol) async throws -> String? {
        guard let credential = NodeCredential(parsing: presented) else { return nil }
        guard let stored = try await registry.store.get(Self.credentialKey(credential.node)),
              let record = try? JSONDecoder().decode(CredentialRecord.self, from: stored.data),
              SecretHash.matches(credential.secret, storedHash: record.secretSHA256) else {
            throw APIFailure(code: 401, message: "node credential unknown or revoked (deleting a node revokes it); join the node again with a new token")
        }
        return credential.node
    }

    // MARK: - Joining

    /// Admits a node: signs its certificate, records the token's use and issues its credential, replacing
    /// any earlier one. A name taken by a Ready node is refused: that is another machine, alive.
    public func join(_ request: JoinRequest, tokenID: String, now: Date = Date()) async throws -> JoinResponse {
        if let problem = Validation.dnsLabelProblem(request.nodeName) {
            throw APIFailure(code: 422, message: "nodeName: \(problem)", details: [InvalidField(path: "nodeName", message: problem)])
        }
        let name = request.nodeName
        if let (node, _) = try await registry.typed(Node.self, namespace: "", name: name), node.status?.ready == true {
            throw APIFailure(code: 409, message: "node \"\(name)\" is Ready, so another agent runs under that name; choose another --node-name, or `weft delete node \(name)` first if that machine is gone")
        }
        let identity = try SPIFFEID.node(name, trustDomain: signer.trustDomain)
        let issued = try signer.sign(CertificateRequest(csr: request.csr, identity: identity.description), now: now)
        let credential = NodeCredential.generate(node: name)
        let record = CredentialRecord(node: name, secretSHA256: credential.secretHash, created: ResourceCodec.timestamp(now), joinedWith: tokenID)
        try await registry.withConflictRetry {
            guard let stored = try await registry.store.get(Self.tokenKey(tokenID)) else {
                throw APIFailure(code: 401, message: "join token \(tokenID) was revoked; create a new one with `weft token create`")
            }
            var token = try JSONDecoder().decode(TokenRecord.self, from: stored.data)
            if !token.usedBy.contains(name) { token.usedBy.append(name) }
            var writes: [Write] = [.update(stored.key, try Self.encode(token), ifRevision: stored.revision)]
            if let existing = try await registry.store.get(Self.credentialKey(name)) {
                writes.append(.update(existing.key, try Self.encode(record), ifRevision: existing.revision))
            } else {
                writes.append(.create(Self.credentialKey(name), try Self.encode(record)))
            }
            try await registry.store.commit(writes)
        }
        return JoinResponse(nodeName: name, credential: credential.description, certificate: issued)
    }

    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }
}
