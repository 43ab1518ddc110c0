import Testing
@testable import WeftControlPlane

@Suite("Access to secrets")
struct SecretAccessTests {
    private func decide(_ principal: Principal, _ method: String, _ path: String) -> AccessPolicy.Decision {
        AccessPolicy.decide(principal, method: method, path: path.split(separator: "/"))
    }

    @Test func aNodeReadsOneSecretAtATimeAndNeverListsThem() {
        let node = Principal.node("n1")
        // One secret: allowed only if a replica on the node uses it, which the route checks.
        #expect(decide(node, "GET", "namespaces/default/secrets/db") == .checkObject)
        for path in ["secrets", "namespaces/default/secrets"] {
            guard case .deny(let code, let message) = decide(node, "GET", path) else {
                Issue.record("GET \(path) was allowed for a node")
                continue
            }
            #expect(code == 403)
            #expect(message.contains("may not list or watch Secrets"))
        }
        // ConfigMaps are read like other objects.
        #expect(decide(node, "GET", "namespaces/default/configmaps") == .allow)
        #expect(decide(node, "GET", "namespaces/default/configmaps/web") == .allow)
        #expect(decide(.admin, "GET", "secrets") == .allow)
        #expect(decide(.admin, "GET", "namespaces/default/secrets/db") == .allow)
    }
}
