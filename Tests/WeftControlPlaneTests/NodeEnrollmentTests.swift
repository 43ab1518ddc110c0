import Foundation
import Logging
import Testing
import WeftCore
import WeftPKI
import WeftStore
import X509
@testable import WeftControlPlane

@Suite("Node enrollment")
struct NodeEnrollmentTests {
    let now = Date(timeIntervalSince1970: 1_767_225_600)

    private func withEnrollment(_ body: (NodeEnrollment, RegistryFixture) async throws -> Void) async throws {
        try await withRegistry { fixture in
            let authority = try CertificateAuthority.create(now: now)
            let signer = CertificateSigner(authority: authority, trustDomain: "weft.internal", validity: 3600)
            try await body(try NodeEnrollment(registry: fixture.registry, signer: signer, clusterAuthority: authority), fixture)
        }
    }

    private func csr(_ node: String) throws -> String {
        try IdentityRequest(identity: try SPIFFEID.node(node, trustDomain: "weft.internal")).csrPEM()
    }

    private func refused(_ code: Int, _ body: () async throws -> Void) async {
        await #expect { try await body() } throws: { ($0 as? APIFailure)?.code == code }
    }

    @Test("a token carries the CA pin, is stored as a hash, lists without its secret, expires and can be revoked")
    func tokenLifecycle() async throws {
        try await withEnrollment { enrollment, fixture in
            let created = try await enrollment.createToken(JoinTokenRequest(ttlSeconds: 3600, description: "rack 2"), now: now)
            let token = try JoinToken(parsing: try #require(created.token))
            #expect(token.caHash == (try CAPin.hash(of: Certificate(pemEncoded: enrollment.signer.status.bundle[0]))))
            #expect(created.expires == (now + 3600).formatted(.iso8601))
            let stored = try #require(try await fixture.store.get(ObjectKey(kind: "JoinToken", namespace: "", name: token.id)))
            #expect(!String(decoding: stored.data, as: UTF8.self).contains(token.secret), "the secret itself is never stored")

            let listed = try await enrollment.listTokens()
            #expect(listed.map(\.id) == [token.id] && listed[0].token == nil && listed[0].description == "rack 2")

            #expect(try await enrollment.authenticateJoinToken(token.description, now: now + 10) == token.id)
            #expect(try await enrollment.authenticateJoinToken("not-a-token", now: now) == nil)
            let wrong = try JoinToken(id: token.id, secret: String(repeating: "a", count: 24), caHash: token.caHash)
            await refused(401) { _ = try await enrollment.authenticateJoinToken(wrong.description, now: now) }
            await refused(401) { _ = try await enrollment.authenticateJoinToken(token.description, now: now + 3600) }

            #expect(try await enrollment.revokeToken(id: token.id).id == token.id)
            await refused(401) { _ = try await enrollment.authenticateJoinToken(token.description, now: now + 10) }
            await refused(404) { _ = try await enrollment.revokeToken(id: token.id) }
            #expect(try await enrollment.listTokens().isEmpty)
        }
    }

    @Test(arguments: [0, 59, 366 * 86_400 + 1])
    func outOfRangeLifetimesAreRefused(ttl: Int) async throws {
        try await withEnrollment { enrollment, _ in
            await refused(422) { _ = try await enrollment.createToken(JoinTokenRequest(ttlSeconds: ttl)) }
        }
    }

    @Test("a join signs the node's CSR and issues a credential that authenticates as that node until the node is deleted")
    func joinIssuesANodeCredential() async throws {
        try await withEnrollment { enrollment, fixture in
            let token = try JoinToken(parsing: try #require(try await enrollment.createToken(JoinTokenRequest(ttlSeconds: 3600), now: now).token))
            let joined = try await enrollment.join(JoinRequest(nodeName: "worker-1", csr: try csr("worker-1")), tokenID: token.id, now: now)
            #expect(joined.nodeName == "worker-1")
            #expect(joined.certificate.trustBundle == enrollment.signer.status.bundle)
            #expect(try await enrollment.authenticateNode(joined.credential) == "worker-1")
            #expect(try await enrollment.listTokens().first?.usedBy == ["worker-1"])

            // A forged secret for the same node is refused.
            let forged = NodeCredential.generate(node: "worker-1").description
            await refused(401) { _ = try await enrollment.authenticateNode(forged) }
            // The CSR must be for the node it joins as.
            await refused(400) { _ = try await enrollment.join(JoinRequest(nodeName: "worker-2", csr: "junk"), tokenID: token.id, now: now) }

            // Registered and Ready: the name is taken.
            _ = try await fixture.registry.putNode(Node(metadata: ObjectMeta(name: "worker-1"), status: NodeStatus(ready: true)))
            await refused(409) { _ = try await enrollment.join(JoinRequest(nodeName: "worker-1", csr: try csr("worker-1")), tokenID: token.id, now: now) }

            // Deleting the node revokes its credential.
            _ = try await fixture.registry.delete(.node, namespace: "", name: "worker-1")
            await refused(401) { _ = try await enrollment.authenticateNode(joined.credential) }

            // It can join again (e.g. with a fresh state directory): a new credential.
            let again = try await enrollment.join(JoinRequest(nodeName: "worker-1", csr: try csr("worker-1")), tokenID: token.id, now: now)
            #expect(again.credential != joined.credential)
            #expect(try await enrollment.authenticateNode(again.credential) == "worker-1")
        }
    }
}

@Suite("Access policy")
struct AccessPolicyTests {
    private func decide(_ principal: Principal, _ method: String, _ path: String) -> AccessPolicy.Decision {
        AccessPolicy.decide(principal, method: method, path: path.split(separator: "/"))
    }

    private func isDenied(_ decision: AccessPolicy.Decision, _ code: Int) -> Bool {
        if case .deny(let denied, _) = decision { return denied == code }
        return false
    }

    @Test func aRefusalNamesTheRouteAsRequested() {
        // A path outside /api/v1 (the middleware passes the request's own method and path).
        guard case .deny(403, let message) = AccessPolicy.decide(.node("n1"), method: "POST", path: ["debug"], route: "POST /debug") else {
            Issue.record("a node credential was allowed POST /debug")
            return
        }
        #expect(message.contains("may not POST /debug:") && !message.contains("/api/v1/debug"), "\(message)")
        guard case .deny(403, let apply) = decide(.node("n1"), "POST", "apply") else {
            Issue.record("a node credential was allowed to apply")
            return
        }
        #expect(apply.contains("may not POST /api/v1/apply:"), "\(apply)")
    }

    @Test func theAdminMayDoAnythingButJoin() {
        for (method, path) in [("POST", "apply"), ("DELETE", "nodes/n1"), ("POST", "tokens"), ("PUT", "nodes/n9"), ("GET", "tokens")] {
            #expect(decide(.admin, method, path) == .allow, "\(method) \(path)")
        }
        #expect(isDenied(decide(.admin, "POST", "join"), 403))
    }

    @Test func aJoinTokenOnlyJoins() {
        #expect(decide(.joinToken(id: "abc123"), "POST", "join") == .allow)
        for (method, path) in [("GET", "nodes"), ("POST", "apply"), ("POST", "certificates"), ("PUT", "nodes/n1")] {
            #expect(isDenied(decide(.joinToken(id: "abc123"), method, path), 401), "\(method) \(path)")
        }
    }

    @Test func aNodeReadsRenewsItselfAndReportsItsReplicas() {
        let node = Principal.node("n1")
        for path in ["nodes", "namespaces/default/replicas", "replicas", "services", "endpoints", "namespaces/default/replicas/r/log"] {
            #expect(decide(node, "GET", path) == .allow, "GET \(path)")
        }
        #expect(decide(node, "PUT", "nodes/n1") == .allow)
        #expect(decide(node, "PUT", "namespaces/default/replicas/r1/status") == .checkObject)
        #expect(decide(node, "DELETE", "namespaces/default/replicas/r1") == .checkObject)
        #expect(decide(node, "POST", "certificates") == .checkObject)
    }

    @Test(arguments: [
        ("PUT", "nodes/n2", "only node \"n1\""),
        ("POST", "apply", "may not POST /api/v1/apply"),
        ("PUT", "namespaces/default/deployments/web/scale", "may not"),
        ("DELETE", "namespaces/default/deployments/web", "may not"),
        ("DELETE", "namespaces/default/services/web", "may not"),
        ("DELETE", "nodes/n1", "may not"),
        ("POST", "tokens", "admin"),
        ("GET", "tokens", "admin"),
        ("DELETE", "tokens/abc123", "admin"),
        ("POST", "join", "join token"),
    ])
    func aNodeMayNotDoTheRest(method: String, path: String, message: String) {
        guard case .deny(let code, let text) = decide(.node("n1"), method, path) else {
            Issue.record("\(method) \(path) allowed")
            return
        }
        #expect(code == 403)
        #expect(text.contains(message), "\(text)")
    }

    @Test func objectChecksKeepANodeToItsOwnReplicasAndIdentity() throws {
        func replica(on node: String) -> Replica {
            Replica(metadata: ObjectMeta(name: "r", namespace: "default"),
                    spec: ReplicaSpec(deployment: "web", node: node, templateHash: "h", template: WorkloadSpec(command: ["x"])))
        }
        try Principal.node("n1").mayChange(replica(on: "n1"))
        try Principal.admin.mayChange(replica(on: "n2"))
        #expect { try Principal.node("n1").mayChange(replica(on: "n2")) } throws: { ($0 as? APIFailure)?.code == 403 && "\($0)".contains("n2") }
        #expect(throws: APIFailure.self) { try Principal.node("n1").mayChange(replica(on: "")) }
        #expect(throws: APIFailure.self) { try Principal.joinToken(id: "x").mayChange(replica(on: "n1")) }

        try Principal.node("n1").mayRequest(identity: "spiffe://weft.internal/node/n1")
        try Principal.node("n1").mayRequest(identity: "spiffe://weft.internal/ns/shop/sa/cart")
        try Principal.admin.mayRequest(identity: "spiffe://weft.internal/node/n2")
        #expect { try Principal.node("n1").mayRequest(identity: "spiffe://weft.internal/node/n2") } throws: { ($0 as? APIFailure)?.code == 403 }
        #expect(throws: APIFailure.self) { try Principal.node("n1").mayRequest(identity: "spiffe://weft.internal/node/n1/x") }
    }
}
