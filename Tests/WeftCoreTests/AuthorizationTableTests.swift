import Testing
@testable import WeftCore

private func policy(_ name: String, namespace: String = "default", service: String = "cart", allow: [AuthorizationRule]) -> AuthorizationPolicy {
    AuthorizationPolicy(metadata: ObjectMeta(name: name, namespace: namespace), spec: AuthorizationPolicySpec(service: service, allow: allow))
}

private func peer(_ name: String, namespace: String = "default", _ mode: MutualTLSMode) -> PeerAuthentication {
    PeerAuthentication(metadata: ObjectMeta(name: name, namespace: namespace), spec: PeerAuthenticationSpec(mtls: PeerMutualTLS(mode)))
}

private func sa(_ namespace: String, _ name: String) -> SourcePrincipal {
    SourcePrincipal(namespace: namespace, serviceAccount: name)
}

private func reason(_ decision: AuthorizationDecision) -> String {
    guard case .deny(let reason) = decision else { return "" }
    return reason
}

/// The brief's example: two named accounts, a whole namespace, and an account within a namespace.
private let cartCallers = policy("cart-callers", allow: [
    AuthorizationRule(serviceAccounts: ["frontend", "payments/worker"]),
    AuthorizationRule(namespaces: ["ops"]),
    AuthorizationRule(serviceAccounts: ["batch"], namespaces: ["jobs"]),
])

@Suite("AuthorizationTable")
struct AuthorizationTableTests {
    @Test func withoutPoliciesEverySourceIsAllowed() {
        let table = AuthorizationTable()
        #expect(table.decide(namespace: "default", service: "cart", source: sa("default", "frontend")) == .allow)
        #expect(table.decide(namespace: "default", service: "cart", source: sa("other", "x")) == .allow)
        #expect(table.decide(namespace: "default", service: "cart", source: nil) == .allow, "plaintext is fine outside strict namespaces")
    }

    @Test func policiesOnlyAffectTheServiceTheySelect() {
        let table = AuthorizationTable(policies: [cartCallers])
        #expect(table.decide(namespace: "default", service: "catalog", source: sa("x", "y")) == .allow)
        #expect(table.decide(namespace: "default", service: "catalog", source: nil) == .allow)
        // Same service name in another namespace: not selected.
        #expect(table.decide(namespace: "shop", service: "cart", source: sa("x", "y")) == .allow)
        #expect(table.hasPolicies(namespace: "default", service: "cart"))
        #expect(!table.hasPolicies(namespace: "shop", service: "cart"))
    }

    @Test(arguments: [
        // A bare name is in the policy's namespace.
        (sa("default", "frontend"), true),
        (sa("shop", "frontend"), false),
        // namespace/name is exact.
        (sa("payments", "worker"), true),
        (sa("default", "worker"), false),
        (sa("payments", "other"), false),
        // namespaces: any account there.
        (sa("ops", "anything"), true),
        (sa("ops", "frontend"), true),
        // Both fields: the account in that namespace, nothing else.
        (sa("jobs", "batch"), true),
        (sa("jobs", "other"), false),
        (sa("default", "batch"), false),
        (sa("elsewhere", "batch"), false),
    ])
    func entriesOfTheExamplePolicy(source: SourcePrincipal, allowed: Bool) {
        let decision = AuthorizationTable(policies: [cartCallers]).decide(namespace: "default", service: "cart", source: source)
        #expect(decision.isAllowed == allowed, "\(source): \(decision)")
    }

    @Test func deniedSourceGetsAReasonNamingSourceServiceAndPolicy() {
        let decision = AuthorizationTable(policies: [cartCallers]).decide(namespace: "default", service: "cart", source: sa("shop", "web"))
        #expect(decision == .deny(reason: "service account shop/web may not reach service default/cart: no rule of AuthorizationPolicy default/cart-callers allows it"))
    }

    @Test func sourceWithoutMeshIdentityNeverMatchesARule() {
        // Even a rule that matches every mesh identity.
        let table = AuthorizationTable(policies: [policy("any", allow: [AuthorizationRule()])])
        #expect(table.decide(namespace: "default", service: "cart", source: sa("anywhere", "anyone")) == .allow)
        #expect(table.decide(namespace: "default", service: "cart", source: sa("default", "cart")) == .allow)
        let decision = table.decide(namespace: "default", service: "cart", source: nil)
        #expect(decision == .deny(reason: "a source without a mesh identity may not reach service default/cart: "
            + "no rule of AuthorizationPolicy default/any allows it (rules match mesh identities only)"))
    }

    @Test func emptyAllowListDeniesEverySource() {
        let table = AuthorizationTable(policies: [policy("lockdown", allow: [])])
        for source in [sa("default", "frontend"), sa("default", "cart"), sa("ops", "admin"), nil] {
            let decision = table.decide(namespace: "default", service: "cart", source: source)
            #expect(!decision.isAllowed)
            #expect(reason(decision).hasSuffix("service default/cart: AuthorizationPolicy default/lockdown allows no source (allow: [])"), "\(decision)")
        }
    }

    @Test func policiesOfOneServiceAllowTheUnionOfTheirRules() {
        let table = AuthorizationTable(policies: [
            policy("b-frontend", allow: [AuthorizationRule(serviceAccounts: ["frontend"])]),
            policy("a-ops", allow: [AuthorizationRule(namespaces: ["ops"])]),
            policy("c-lockdown", allow: []),
        ])
        #expect(table.decide(namespace: "default", service: "cart", source: sa("default", "frontend")) == .allow)
        #expect(table.decide(namespace: "default", service: "cart", source: sa("ops", "x")) == .allow, "a deny-all policy does not take away what another allows")
        let decision = table.decide(namespace: "default", service: "cart", source: sa("default", "web"))
        #expect(decision == .deny(reason: "service account default/web may not reach service default/cart: "
            + "no rule of AuthorizationPolicies default/a-ops, default/b-frontend, default/c-lockdown allows it"))
    }

    @Test func severalDenyAllPoliciesAreNamedTogether() {
        let table = AuthorizationTable(policies: [policy("one", allow: []), policy("two", allow: [])])
        #expect(reason(table.decide(namespace: "default", service: "cart", source: sa("default", "x")))
            .hasSuffix("AuthorizationPolicies default/one, default/two allow no source (allow: [])"))
    }

    @Test func crossNamespaceEntries() {
        // A policy in shop naming accounts of other namespaces, and a bare name that means shop.
        let table = AuthorizationTable(policies: [policy("callers", namespace: "shop", service: "api", allow: [
            AuthorizationRule(serviceAccounts: ["default/frontend", "web"]),
            AuthorizationRule(serviceAccounts: ["runner", "ci/deployer", "prod/deployer"], namespaces: ["ci", "staging"]),
        ])])
        let allowed: [SourcePrincipal] = [sa("default", "frontend"), sa("shop", "web"), sa("ci", "runner"), sa("staging", "runner"), sa("ci", "deployer")]
        let denied: [SourcePrincipal] = [sa("shop", "frontend"), sa("default", "web"), sa("shop", "runner"), sa("staging", "deployer"), sa("prod", "deployer")]
        for source in allowed {
            #expect(table.decide(namespace: "shop", service: "api", source: source) == .allow, "\(source)")
        }
        for source in denied {
            #expect(!table.decide(namespace: "shop", service: "api", source: source).isAllowed, "\(source)")
        }
    }

    @Test func strictNamespaceRefusesPlaintextEvenWithoutPolicies() {
        let table = AuthorizationTable(peerAuthentications: [peer("mtls", .strict)])
        #expect(table.isStrict(namespace: "default"))
        #expect(!table.isStrict(namespace: "shop"))
        #expect(table.decide(namespace: "default", service: "cart", source: sa("default", "frontend")) == .allow)
        #expect(table.decide(namespace: "default", service: "cart", source: nil) == .deny(reason:
            "a source without a mesh identity may not reach service default/cart: PeerAuthentication default/mtls requires mutual TLS (STRICT) in namespace default"))
        // Other namespaces are unaffected.
        #expect(table.decide(namespace: "shop", service: "cart", source: nil) == .allow)
    }

    @Test func strictModeIsCheckedBeforePolicies() {
        let table = AuthorizationTable(policies: [policy("any", allow: [AuthorizationRule()])], peerAuthentications: [peer("mtls", .strict)])
        #expect(reason(table.decide(namespace: "default", service: "cart", source: nil)).contains("PeerAuthentication default/mtls"))
        #expect(table.decide(namespace: "default", service: "cart", source: sa("x", "y")) == .allow)
    }

    @Test func anyStrictPeerAuthenticationMakesTheNamespaceStrict() {
        let permissive = AuthorizationTable(peerAuthentications: [peer("open", .permissive)])
        #expect(!permissive.isStrict(namespace: "default"))
        #expect(permissive.decide(namespace: "default", service: "cart", source: nil) == .allow)

        let mixed = AuthorizationTable(peerAuthentications: [peer("open", .permissive), peer("z-strict", .strict), peer("a-strict", .strict)])
        #expect(mixed.isStrict(namespace: "default"))
        #expect(reason(mixed.decide(namespace: "default", service: "cart", source: nil))
            .hasSuffix("PeerAuthentications default/a-strict, default/z-strict require mutual TLS (STRICT) in namespace default"))
    }

    @Test func permissiveNamespaceWithPoliciesStillDeniesPlaintextToSelectedServices() {
        let table = AuthorizationTable(policies: [cartCallers], peerAuthentications: [peer("open", .permissive)])
        #expect(!table.decide(namespace: "default", service: "cart", source: nil).isAllowed)
        #expect(table.decide(namespace: "default", service: "catalog", source: nil) == .allow)
    }

    @Test func malformedObjectsNeverWidenAccess() {
        // Objects that validation refuses can still reach the table (e.g. stored by an older server):
        // they must not allow more than they say.
        var lowerCase = peer("weird", .permissive)
        lowerCase.spec.mtls.mode = "strict"
        let table = AuthorizationTable(
            policies: [policy("odd", allow: [
                AuthorizationRule(serviceAccounts: ["a/b/c"]),
                AuthorizationRule(serviceAccounts: []),
                AuthorizationRule(namespaces: []),
                AuthorizationRule(serviceAccounts: ["other/x"], namespaces: ["ops"]),
            ])],
            peerAuthentications: [lowerCase])
        for source in [sa("default", "a"), sa("a", "b"), sa("other", "x"), sa("ops", "x"), sa("default", "c")] {
            #expect(!table.decide(namespace: "default", service: "cart", source: source).isAllowed, "\(source)")
        }
        #expect(!table.isStrict(namespace: "default"), "only STRICT, spelled so, is strict")
    }

    @Test func replicaPrincipalFeedsTheTable() {
        var replica = Replica(metadata: ObjectMeta(name: "frontend-abc-x", namespace: "default"),
                              spec: ReplicaSpec(deployment: "frontend", node: "n1", templateHash: "h", template: WorkloadSpec(command: ["x"])))
        let table = AuthorizationTable(policies: [cartCallers])
        #expect(replica.principal == sa("default", "frontend"))
        #expect(table.decide(namespace: "default", service: "cart", source: replica.principal) == .allow)
        replica.spec.template.serviceAccountName = "web"
        #expect(!table.decide(namespace: "default", service: "cart", source: replica.principal).isAllowed)
    }
}
