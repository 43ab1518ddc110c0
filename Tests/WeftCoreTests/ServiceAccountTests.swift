import Foundation
import Testing
@testable import WeftCore

@Suite("Service accounts")
struct ServiceAccountTests {
    private func replica(account: String?) -> Replica {
        Replica(metadata: ObjectMeta(name: "web-abc-x", namespace: "shop"),
                spec: ReplicaSpec(deployment: "web", node: "n1", templateHash: "h",
                                  template: WorkloadSpec(command: ["x"], serviceAccountName: account)))
    }

    @Test func replicaRunsAsItsTemplatesAccountElseItsDeploymentsName() {
        #expect(replica(account: nil).serviceAccount == "web")
        #expect(replica(account: "storefront").serviceAccount == "storefront")
        #expect(replica(account: "storefront").principal == SourcePrincipal(namespace: "shop", serviceAccount: "storefront"))
        var deployment = validDeployment()
        #expect(deployment.serviceAccount == "web")
        deployment.spec.template.spec.serviceAccountName = "storefront"
        #expect(deployment.serviceAccount == "storefront")
    }

    @Test func serviceAccountNameDecodesFromTheTemplate() throws {
        let text = #"""
        {"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {"name": "cart"},
         "spec": {"template": {"spec": {"command": ["/bin/app"], "serviceAccountName": "shop-cart"}}}}
        """#
        guard case .deployment(let deployment) = try decodeManifest(text).get() else {
            Issue.record("not a Deployment")
            return
        }
        #expect(deployment.spec.template.spec.serviceAccountName == "shop-cart")
        #expect(deployment.serviceAccount == "shop-cart")
        let misspelt = text.replacingOccurrences(of: "serviceAccountName", with: "serviceAccount")
        expectSingleError(try manifestError(misspelt).errors, path: "spec.template.spec.serviceAccount", contains: "unknown field")
    }

    @Test func settingTheAccountChangesTheTemplateHashAndLeavingItUnsetDoesNot() throws {
        var template = validDeployment().spec.template
        let unset = TemplateHash.of(template)
        // Unset, the field is not encoded, so templates from before it existed keep their hash (no rollout on upgrade).
        let encoded = String(decoding: try JSONEncoder().encode(template), as: UTF8.self)
        #expect(!encoded.contains("serviceAccountName"))
        template.spec.serviceAccountName = "web"
        let named = TemplateHash.of(template)
        #expect(named != unset, "a new identity needs new replicas, as any template change does")
        template.spec.serviceAccountName = "other"
        #expect(TemplateHash.of(template) != named)
    }
}
