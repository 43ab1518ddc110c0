import Testing
@testable import WeftCore

/// The brief's example policy; tests break one rule at a time.
private func validPolicy() -> AuthorizationPolicy {
    AuthorizationPolicy(
        metadata: ObjectMeta(name: "cart-callers", namespace: "default"),
        spec: AuthorizationPolicySpec(service: "cart", allow: [
            AuthorizationRule(serviceAccounts: ["frontend", "payments/worker"]),
            AuthorizationRule(namespaces: ["ops"]),
            AuthorizationRule(serviceAccounts: ["batch"], namespaces: ["jobs"]),
        ]))
}

private let policyJSON = #"""
{"apiVersion": "weft/v1", "kind": "AuthorizationPolicy",
 "metadata": {"name": "cart-callers", "uid": "u-1", "resourceVersion": "9", "creationTimestamp": "2024-05-01T10:00:00Z"},
 "spec": {"service": "cart", "allow": [
   {"serviceAccounts": ["frontend", "payments/worker"]},
   {"namespaces": ["ops"]},
   {"serviceAccounts": ["batch"], "namespaces": ["jobs"]},
   {}
 ]}}
"""#

private func policy(spec: String, metadata: String = #""name": "p""#, top: String = "") -> String {
    #"{"apiVersion": "weft/v1", "kind": "AuthorizationPolicy", "metadata": {\#(metadata)}, "spec": {\#(spec)}\#(top)}"#
}

private func peerAuthentication(spec: String, top: String = "") -> String {
    #"{"apiVersion": "weft/v1", "kind": "PeerAuthentication", "metadata": {"name": "mtls", "namespace": "shop"}, "spec": {\#(spec)}\#(top)}"#
}

struct PolicyRule: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String
    var message: String
    var mutate: @Sendable (inout AuthorizationPolicy) -> Void

    init(_ name: String, _ path: String, _ message: String, _ mutate: @escaping @Sendable (inout AuthorizationPolicy) -> Void) {
        self.name = name
        self.path = path
        self.message = message
        self.mutate = mutate
    }

    var testDescription: String { name }
}

@Suite("Validation: AuthorizationPolicy")
struct AuthorizationPolicyValidationTests {
    @Test func baselineIsValid() {
        #expect(Validation.validate(validPolicy()) == [])
    }

    static let rules: [PolicyRule] = [
        PolicyRule("apiVersion", "apiVersion", "must be weft/v1") { $0.apiVersion = "v1" },
        PolicyRule("name", "metadata.name", "is not a valid name") { $0.metadata.name = "Cart_Callers" },
        PolicyRule("name 64 chars", "metadata.name", "must be at most 63 characters") { $0.metadata.name = String(repeating: "p", count: 64) },
        PolicyRule("namespace", "metadata.namespace", "is not a valid name") { $0.metadata.namespace = "Shop" },
        PolicyRule("service empty", "spec.service", "must not be empty") { $0.spec.service = "" },
        PolicyRule("service not a label", "spec.service", "\"cart.default\" is not a valid name") { $0.spec.service = "cart.default" },
        PolicyRule("service digit first", "spec.service", "starting with a letter") { $0.spec.service = "1cart" },
        PolicyRule("serviceAccounts empty list", "spec.allow[0].serviceAccounts", "must list at least one service account") {
            $0.spec.allow[0].serviceAccounts = []
        },
        PolicyRule("service account upper-case", "spec.allow[0].serviceAccounts[1]", "\"Worker\" is not a valid name") {
            $0.spec.allow[0].serviceAccounts = ["frontend", "Worker"]
        },
        PolicyRule("service account two slashes", "spec.allow[0].serviceAccounts[0]", "with one '/'") {
            $0.spec.allow[0].serviceAccounts = ["a/b/c"]
        },
        PolicyRule("service account empty namespace", "spec.allow[0].serviceAccounts[0]", "namespace of \"/worker\": must not be empty") {
            $0.spec.allow[0].serviceAccounts = ["/worker"]
        },
        PolicyRule("service account empty name", "spec.allow[0].serviceAccounts[0]", "service account of \"payments/\": must not be empty") {
            $0.spec.allow[0].serviceAccounts = ["payments/"]
        },
        PolicyRule("service account bad namespace", "spec.allow[0].serviceAccounts[0]", "namespace of \"Pay/worker\": \"Pay\" is not a valid name") {
            $0.spec.allow[0].serviceAccounts = ["Pay/worker"]
        },
        PolicyRule("service account empty", "spec.allow[0].serviceAccounts[0]", "must not be empty") { $0.spec.allow[0].serviceAccounts = [""] },
        PolicyRule("service account duplicate", "spec.allow[0].serviceAccounts[1]", "duplicate service account \"default/frontend\" (also serviceAccounts[0])") {
            $0.spec.allow[0].serviceAccounts = ["frontend", "frontend"]
        },
        PolicyRule("bare and qualified duplicate", "spec.allow[0].serviceAccounts[1]", "duplicate service account \"default/frontend\"") {
            $0.spec.allow[0].serviceAccounts = ["frontend", "default/frontend"]
        },
        PolicyRule("namespaces empty list", "spec.allow[1].namespaces", "must list at least one namespace") { $0.spec.allow[1].namespaces = [] },
        PolicyRule("namespace invalid", "spec.allow[1].namespaces[1]", "\"ops_team\" is not a valid name") { $0.spec.allow[1].namespaces = ["ops", "ops_team"] },
        PolicyRule("namespace with slash", "spec.allow[1].namespaces[0]", "is not a valid name") { $0.spec.allow[1].namespaces = ["ops/admin"] },
        PolicyRule("namespace duplicate", "spec.allow[1].namespaces[2]", "duplicate namespace \"ops\"") { $0.spec.allow[1].namespaces = ["ops", "dev", "ops"] },
        PolicyRule("qualified account outside the rule's namespaces", "spec.allow[2].serviceAccounts[1]",
                   "\"payments/worker\" is in namespace payments, which this rule's namespaces do not list, so it could never match") {
            $0.spec.allow[2].serviceAccounts = ["batch", "payments/worker"]
        },
        PolicyRule("duplicate rule", "spec.allow[3]", "duplicate rule (also allow[1])") { $0.spec.allow.append(AuthorizationRule(namespaces: ["ops"])) },
        PolicyRule("duplicate rule in another spelling", "spec.allow[3]", "duplicate rule (also allow[0])") {
            $0.spec.allow.append(AuthorizationRule(serviceAccounts: ["payments/worker", "default/frontend"]))
        },
        PolicyRule("two empty rules", "spec.allow[4]", "duplicate rule (also allow[3])") { $0.spec.allow += [AuthorizationRule(), AuthorizationRule()] },
    ]

    @Test(arguments: rules)
    func brokenRuleIsReportedAtItsPath(_ rule: PolicyRule) {
        var policy = validPolicy()
        rule.mutate(&policy)
        expectSingleError(Validation.validate(policy), path: rule.path, contains: rule.message)
    }

    @Test func editsInsideTheRulesStayValid() {
        let edits: [(inout AuthorizationPolicy) -> Void] = [
            { $0.spec.allow = [] },
            { $0.spec.allow = [AuthorizationRule()] },
            { $0.metadata.name = "1-policy" },
            { $0.metadata.namespace = nil },
            // The same name in different namespaces, and the qualified form of a bare name listed in namespaces.
            { $0.spec.allow = [AuthorizationRule(serviceAccounts: ["frontend", "shop/frontend", "ops/frontend"])] },
            { $0.spec.allow = [AuthorizationRule(serviceAccounts: ["batch", "jobs/batch"], namespaces: ["jobs", "ci"])] },
            // Equal rules differ once namespaces change what a bare name means.
            { $0.spec.allow = [AuthorizationRule(serviceAccounts: ["batch"]), AuthorizationRule(serviceAccounts: ["batch"], namespaces: ["default"])] },
        ]
        for edit in edits {
            var policy = validPolicy()
            edit(&policy)
            #expect(Validation.validate(policy) == [], "\(policy.spec)")
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        var policy = validPolicy()
        policy.spec.service = ""
        policy.spec.allow[0].serviceAccounts = ["a/b/c", "Front", "frontend", "frontend"]
        policy.spec.allow[1].namespaces = []
        let errors = Validation.validate(policy)
        #expect(errors.map(\.path) == [
            "spec.service", "spec.allow[0].serviceAccounts[0]", "spec.allow[0].serviceAccounts[1]",
            "spec.allow[0].serviceAccounts[3]", "spec.allow[1].namespaces",
        ], "\(errors)")
    }

    @Test func decodesWithDefaultsAndDropsServerFields() throws {
        guard case .authorizationPolicy(let policy) = try decodeManifest(policyJSON, defaultNamespace: "shop").get() else {
            Issue.record("not an AuthorizationPolicy")
            return
        }
        #expect(policy.metadata == ObjectMeta(name: "cart-callers", namespace: "shop"))
        #expect(policy.kind == "AuthorizationPolicy")
        #expect(policy.spec.service == "cart")
        #expect(policy.spec.allow.count == 4)
        #expect(policy.spec.allow[2] == AuthorizationRule(serviceAccounts: ["batch"], namespaces: ["jobs"]))
        #expect(policy.spec.allow[3] == AuthorizationRule())
    }

    @Test(arguments: [
        (policy(spec: #""service": "cart", "allow": [{"serviceAccount": ["a"]}]"#), "spec.allow[0].serviceAccount"),
        (policy(spec: #""service": "cart", "allow": [], "deny": []"#), "spec.deny"),
        (policy(spec: #""service": "cart", "allow": [{"namespaces": ["a"], "from": {}}]"#), "spec.allow[0].from"),
        (policy(spec: #""service": "cart", "allow": []"#, top: #", "status": {}"#), "status"),
    ])
    func unknownFieldsAreRefused(text: String, path: String) throws {
        let error = try manifestError(text)
        #expect(error.object == "AuthorizationPolicy/p")
        expectSingleError(error.errors, path: path, contains: "unknown field")
    }

    @Test(arguments: [
        (policy(spec: #""allow": []"#), "spec.service", "is required"),
        (policy(spec: #""service": "cart""#), "spec.allow", "is required"),
        (policy(spec: #""service": "cart", "allow": {}"#), "spec.allow", "must be a list"),
        (policy(spec: #""service": "cart", "allow": [{"serviceAccounts": "frontend"}]"#), "spec.allow[0].serviceAccounts", "must be a list"),
        (policy(spec: #""service": 80, "allow": []"#), "spec.service", "must be a string"),
    ])
    func requiredFieldsAndTypes(text: String, path: String, message: String) throws {
        expectSingleError(try manifestError(text).errors, path: path, contains: message)
    }

    @Test func validationErrorsComeThroughManifestDecode() throws {
        let error = try manifestError(policy(spec: #""service": "cart", "allow": [{"namespaces": ["ops"]}, {"serviceAccounts": ["x/y/z"]}]"#))
        #expect(error.description.hasPrefix("AuthorizationPolicy/p: spec.allow[1].serviceAccounts[0]: \"x/y/z\" is not a service account"))
    }
}

@Suite("Validation: PeerAuthentication")
struct PeerAuthenticationValidationTests {
    @Test(arguments: MutualTLSMode.allCases)
    func modesDecode(mode: MutualTLSMode) throws {
        guard case .peerAuthentication(let peer) = try decodeManifest(peerAuthentication(spec: #""mtls": {"mode": "\#(mode.rawValue)"}"#)).get() else {
            Issue.record("not a PeerAuthentication")
            return
        }
        #expect(peer.namespace == "shop")
        #expect(peer.spec.mtls.mutualTLSMode == mode)
    }

    @Test(arguments: [
        (peerAuthentication(spec: #""mtls": {"mode": "strict"}"#), "spec.mtls.mode", "must be STRICT or PERMISSIVE, got \"strict\""),
        (peerAuthentication(spec: #""mtls": {"mode": "DISABLE"}"#), "spec.mtls.mode", "must be STRICT or PERMISSIVE, got \"DISABLE\""),
        (peerAuthentication(spec: #""mtls": {}"#), "spec.mtls.mode", "is required"),
        (peerAuthentication(spec: ""), "spec.mtls", "is required"),
        (peerAuthentication(spec: #""mtls": {"mode": "STRICT", "portLevelMtls": {}}"#), "spec.mtls.portLevelMtls", "unknown field"),
        (peerAuthentication(spec: #""mtls": {"mode": "STRICT"}, "selector": {}"#), "spec.selector", "unknown field"),
        (peerAuthentication(spec: #""mtls": {"mode": "STRICT"}"#, top: #", "status": {}"#), "status", "unknown field"),
    ])
    func refused(text: String, path: String, message: String) throws {
        let error = try manifestError(text)
        #expect(error.object == "PeerAuthentication/mtls")
        expectSingleError(error.errors, path: path, contains: message)
    }

    @Test func nameRules() {
        var peer = PeerAuthentication(metadata: ObjectMeta(name: "default", namespace: "shop"), spec: PeerAuthenticationSpec(mtls: PeerMutualTLS(.strict)))
        #expect(Validation.validate(peer) == [])
        peer.metadata.name = "-x"
        expectSingleError(Validation.validate(peer), path: "metadata.name", contains: "is not a valid name")
    }
}
