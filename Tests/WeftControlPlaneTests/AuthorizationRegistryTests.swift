import Foundation
import Testing
import WeftControlPlane
import WeftCore
import WeftStore

private func document(_ text: String) -> JSONValue {
    try! JSONValue.parse(Data(text.utf8))
}

private func policy(_ name: String, service: String = "cart", allow: String = #"[{"serviceAccounts": ["frontend"]}]"#) -> JSONValue {
    document(#"{"apiVersion":"weft/v1","kind":"AuthorizationPolicy","metadata":{"name":"\#(name)"},"spec":{"service":"\#(service)","allow":\#(allow)}}"#)
}

private func peerAuthentication(_ name: String, mode: String = "STRICT") -> JSONValue {
    document(#"{"apiVersion":"weft/v1","kind":"PeerAuthentication","metadata":{"name":"\#(name)"},"spec":{"mtls":{"mode":"\#(mode)"}}}"#)
}

@Suite("Registry: AuthorizationPolicy and PeerAuthentication")
struct AuthorizationRegistryTests {
    @Test("both kinds are created, reported unchanged, configured with a new generation, listed and deleted")
    func lifecycle() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            let first = try await registry.apply([policy("cart-callers"), peerAuthentication("mtls")], namespace: "shop")
            #expect(first.map(\.action) == ["created", "created"])
            #expect(first.map(\.kind) == ["AuthorizationPolicy", "PeerAuthentication"])
            let (created, _) = try #require(try await registry.typed(AuthorizationPolicy.self, namespace: "shop", name: "cart-callers"))
            #expect(created.metadata.generation == 1)
            #expect(created.metadata.uid != nil)

            let again = try await registry.apply([policy("cart-callers"), peerAuthentication("mtls")], namespace: "shop")
            #expect(again.map(\.action) == ["unchanged", "unchanged"])

            let changed = try await registry.apply([policy("cart-callers", allow: "[]"), peerAuthentication("mtls", mode: "PERMISSIVE")], namespace: "shop")
            #expect(changed.map(\.action) == ["configured", "configured"])
            let (updated, _) = try #require(try await registry.typed(AuthorizationPolicy.self, namespace: "shop", name: "cart-callers"))
            #expect(updated.metadata.generation == 2)
            #expect(updated.metadata.uid == created.metadata.uid)
            #expect(updated.spec.allow.isEmpty)
            let peers = try await registry.typedList(PeerAuthentication.self, namespace: "shop")
            #expect(peers.map(\.object.spec.mtls.mode) == ["PERMISSIVE"])

            // Through the generic paths the HTTP routes use.
            let (listed, _) = try await registry.list(.authorizationPolicy, namespace: nil)
            #expect(listed.map { $0["metadata"]?["namespace"]?.stringValue } == ["shop"])
            let fetched = try await registry.get(.peerAuthentication, namespace: "shop", name: "mtls")
            #expect(fetched["spec"]?["mtls"]?["mode"]?.stringValue == "PERMISSIVE")
            _ = try await registry.delete(.authorizationPolicy, namespace: "shop", name: "cart-callers")
            _ = try await registry.delete(.peerAuthentication, namespace: "shop", name: "mtls")
            #expect(try await registry.typed(AuthorizationPolicy.self, namespace: "shop", name: "cart-callers") == nil)
            await #expect(throws: APIFailure.self) { _ = try await registry.get(.peerAuthentication, namespace: "shop", name: "mtls") }
        }
    }

    @Test("a batch with one invalid policy stores nothing, and names the document, object and field of each problem")
    func applyAllOrNothing() async throws {
        try await withRegistry { fixture in
            let before = try await fixture.store.currentRevision()
            let documents = [
                RegistryFixture.deployment("cart"),
                RegistryFixture.service("cart"),
                peerAuthentication("mtls"),
                policy("cart-callers", allow: #"[{"serviceAccounts": ["frontend", "a/b/c"]}, {"namespaces": []}]"#),
                policy("ok"),
            ]
            await #expect {
                _ = try await fixture.registry.apply(documents, namespace: "default")
            } throws: { error in
                guard let failure = error as? APIFailure else { return false }
                return failure.code == 422 && failure.message.contains("nothing was applied")
                    && failure.details.map(\.document) == [3, 3]
                    && failure.details.allSatisfy { $0.object == "AuthorizationPolicy/cart-callers" }
                    && failure.details.map(\.path) == ["spec.allow[0].serviceAccounts[1]", "spec.allow[1].namespaces"]
            }
            #expect(try await fixture.store.currentRevision() == before)
            #expect(try await fixture.registry.typed(Deployment.self, namespace: "default", name: "cart") == nil)
            #expect(try await fixture.registry.typed(PeerAuthentication.self, namespace: "default", name: "mtls") == nil)
            #expect(try await fixture.registry.typed(AuthorizationPolicy.self, namespace: "default", name: "ok") == nil)
        }
    }

    @Test("an unknown field or mode in a PeerAuthentication refuses the whole batch")
    func unknownFieldsRefuseTheBatch() async throws {
        try await withRegistry { fixture in
            let before = try await fixture.store.currentRevision()
            let typo = document(#"{"apiVersion":"weft/v1","kind":"PeerAuthentication","metadata":{"name":"mtls"},"spec":{"mtls":{"mdoe":"STRICT"}}}"#)
            await #expect {
                _ = try await fixture.registry.apply([policy("ok"), typo, peerAuthentication("other", mode: "DISABLE")], namespace: "default")
            } throws: { error in
                guard let failure = error as? APIFailure else { return false }
                return failure.details.map(\.document) == [1, 2] && failure.details.map(\.path) == ["spec.mtls.mdoe", "spec.mtls.mode"]
                    && failure.details[0].message.contains("unknown field") && failure.details[1].message.contains("must be STRICT or PERMISSIVE")
            }
            #expect(try await fixture.store.currentRevision() == before)
        }
    }

    @Test("the same policy twice in one apply is refused")
    func duplicateInBatch() async throws {
        try await withRegistry { fixture in
            await #expect(throws: APIFailure.self) {
                _ = try await fixture.registry.apply([policy("a"), policy("a", service: "catalog")], namespace: "default")
            }
        }
    }

    @Test("the table built from stored objects decides as the policies say")
    func tableFromStoredObjects() async throws {
        try await withRegistry { fixture in
            _ = try await fixture.registry.apply([policy("cart-callers"), peerAuthentication("mtls")], namespace: "shop")
            let policies = try await fixture.registry.typedList(AuthorizationPolicy.self, namespace: nil).map(\.object)
            let peers = try await fixture.registry.typedList(PeerAuthentication.self, namespace: nil).map(\.object)
            let table = AuthorizationTable(policies: policies, peerAuthentications: peers)
            #expect(table.decide(namespace: "shop", service: "cart", source: SourcePrincipal(namespace: "shop", serviceAccount: "frontend")) == .allow)
            #expect(!table.decide(namespace: "shop", service: "cart", source: SourcePrincipal(namespace: "default", serviceAccount: "frontend")).isAllowed)
            #expect(!table.decide(namespace: "shop", service: "catalog", source: nil).isAllowed, "shop is strict")
        }
    }
}
