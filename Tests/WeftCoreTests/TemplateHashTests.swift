import Testing
@testable import WeftCore

private func template(command: [String] = ["/bin/app", "--port", "8080"], env: [EnvVar]? = [EnvVar(name: "MODE", value: "prod")],
                      labels: [String: String]? = ["app": "web", "tier": "frontend"]) -> ReplicaTemplate {
    ReplicaTemplate(metadata: TemplateMetadata(labels: labels),
                    spec: WorkloadSpec(command: command, env: env, ports: [ContainerPort(name: "http", containerPort: 8080)]))
}

private func isHashShaped(_ hash: String) -> Bool {
    hash.count == 10 && hash.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."z").contains($0) }
}

@Suite("TemplateHash")
struct TemplateHashTests {
    @Test func equalTemplatesHashEqually() {
        #expect(TemplateHash.of(template()) == TemplateHash.of(template()))
        // Dictionary order must not matter (labels built in a different order).
        var reordered: [String: String] = [:]
        reordered["tier"] = "frontend"
        reordered["app"] = "web"
        #expect(TemplateHash.of(template(labels: reordered)) == TemplateHash.of(template()))
    }

    @Test func hashIsStableAcrossDecoding() throws {
        let decoded = try StrictDecoder.decode(ReplicaTemplate.self, from: json(#"""
        {"spec": {"ports": [{"containerPort": 8080, "name": "http"}], "env": [{"value": "prod", "name": "MODE"}],
                  "command": ["/bin/app", "--port", "8080"]},
         "metadata": {"labels": {"tier": "frontend", "app": "web"}}}
        """#))
        #expect(TemplateHash.of(decoded) == TemplateHash.of(template()))
    }

    @Test func anyChangeToTheTemplateChangesTheHash() {
        let variants = [
            template(),
            template(command: ["/bin/app", "--port", "8081"]),
            template(command: ["/bin/app", "--port"]),
            template(env: [EnvVar(name: "MODE", value: "dev")]),
            template(env: [EnvVar(name: "MODE", value: "prod"), EnvVar(name: "DEBUG", value: "1")]),
            template(env: nil),
            template(labels: ["app": "web", "tier": "backend"]),
            template(labels: ["app": "web"]),
            template(labels: nil),
        ]
        let hashes = variants.map(TemplateHash.of)
        #expect(Set(hashes).count == variants.count, "hash collision among \(hashes)")
    }

    @Test func hashIsTenBase36Characters() {
        for i in 0..<200 {
            let hash = TemplateHash.of(template(command: ["/bin/app", "\(i)"]))
            #expect(isHashShaped(hash), "\(hash)")
        }
        #expect(isHashShaped(TemplateHash.of(ReplicaTemplate(spec: WorkloadSpec(command: [])))))
    }

    @Test func replicaName() {
        #expect(TemplateHash.replicaName(deployment: "web", hash: "7f9k2m4x1q", suffix: "bx9kz") == "web-7f9k2m4x1q-bx9kz")
    }

    @Test func longestDeploymentNameStillGivesAValidReplicaName() {
        // 46 + 1 + 10 + 1 + 5 = 63: the longest DNS label.
        let deployment = String(repeating: "d", count: 46)
        var rng = SplitMix64(seed: 1)
        let name = TemplateHash.replicaName(deployment: deployment, hash: TemplateHash.of(template()),
                                            suffix: TemplateHash.randomSuffix(using: &rng))
        #expect(name.count == 63)
        #expect(Validation.dnsLabelProblem(name) == nil)
    }

    @Test func randomSuffixUsesTheAlphabet() {
        let alphabet = Set("bcdfghjklmnpqrstvwxz2456789")
        var rng = SplitMix64(seed: 42)
        var seen = Set<Character>()
        for _ in 0..<200 {
            let suffix = TemplateHash.randomSuffix(using: &rng)
            #expect(suffix.count == 5)
            #expect(suffix.allSatisfy(alphabet.contains), "\(suffix)")
            #expect(!suffix.contains { "aeiou013".contains($0) })
            seen.formUnion(suffix)
        }
        // 1000 draws from 27 characters: every character shows up.
        #expect(seen == alphabet)
    }

    @Test func randomSuffixIsDeterministicForASeed() {
        var a = SplitMix64(seed: 7)
        var b = SplitMix64(seed: 7)
        var c = SplitMix64(seed: 8)
        let fromA = (0..<10).map { _ in TemplateHash.randomSuffix(using: &a) }
        let fromB = (0..<10).map { _ in TemplateHash.randomSuffix(using: &b) }
        let fromC = (0..<10).map { _ in TemplateHash.randomSuffix(using: &c) }
        #expect(fromA == fromB)
        #expect(fromA != fromC)
        #expect(Set(fromA).count > 1, "successive suffixes differ")
    }
}

@Suite("ResourceKind and LabelSelector")
struct KindAndSelectorTests {
    @Test(arguments: [
        ("deployments", ResourceKind.deployment), ("deployment", .deployment), ("deploy", .deployment), ("Deployment", .deployment),
        ("DEPLOY", .deployment), ("Deployments", .deployment),
        ("services", .service), ("service", .service), ("svc", .service), ("Service", .service), ("SVC", .service),
        ("replicas", .replica), ("replica", .replica), ("rep", .replica), ("Replica", .replica),
        ("nodes", .node), ("node", .node), ("no", .node), ("Node", .node),
        ("authorizationpolicies", .authorizationPolicy), ("authorizationpolicy", .authorizationPolicy), ("authz", .authorizationPolicy),
        ("AuthorizationPolicy", .authorizationPolicy),
        ("peerauthentications", .peerAuthentication), ("peerauthentication", .peerAuthentication), ("peerauth", .peerAuthentication),
        ("PeerAuthentication", .peerAuthentication),
    ])
    func kindByName(name: String, kind: ResourceKind) {
        #expect(ResourceKind(name: name) == kind)
    }

    @Test(arguments: ["", "pods", "pod", "dep", "deployment ", " svc", "s", "nodez", "Deployment/web", "authorizationpolicys", "pa"])
    func unknownKindNames(name: String) {
        #expect(ResourceKind(name: name) == nil)
    }

    @Test func kindProperties() {
        #expect(ResourceKind.allCases.map(\.plural) == ["deployments", "services", "replicas", "nodes", "endpoints",
                                                        "authorizationpolicies", "peerauthentications", "configmaps", "secrets"])
        #expect(ResourceKind.allCases.filter(\.isUserManaged) == [.deployment, .service, .authorizationPolicy, .peerAuthentication, .configMap, .secret])
        #expect(ResourceKind.allCases.filter { !$0.isNamespaced } == [.node])
        // Every alias leads back to its own kind, and no alias is shared.
        for kind in ResourceKind.allCases {
            #expect(kind.aliases.contains(kind.plural))
            for alias in kind.aliases { #expect(ResourceKind(name: alias) == kind) }
        }
        let all = ResourceKind.allCases.flatMap(\.aliases)
        #expect(Set(all).count == all.count)
    }

    @Test func emptySelectorMatchesNothing() {
        #expect(!LabelSelector().matches(["app": "web"]))
        #expect(!LabelSelector(matchLabels: [:]).matches(["app": "web"]))
        #expect(!LabelSelector().matches(nil))
        #expect(!LabelSelector(matchLabels: [:]).matches([:]))
    }

    @Test func selectorNeedsEveryLabel() {
        let selector = LabelSelector(matchLabels: ["app": "web", "tier": "frontend"])
        #expect(selector.matches(["app": "web", "tier": "frontend"]))
        #expect(selector.matches(["app": "web", "tier": "frontend", "version": "2"]), "extra labels are fine")
        #expect(!selector.matches(["app": "web"]), "a missing label fails")
        #expect(!selector.matches(["app": "web", "tier": "backend"]), "a different value fails")
        #expect(!selector.matches(["App": "web", "tier": "frontend"]), "keys are case-sensitive")
        #expect(!selector.matches(nil))
        #expect(!selector.matches([:]))
    }

    @Test func resourceConveniences() {
        var d = validDeployment()
        d.metadata.namespace = nil
        #expect(d.namespace == "default")
        d.metadata.namespace = "shop"
        #expect(d.namespace == "shop")
        #expect(d.name == "web")
        #expect(d.revision == 0)
        d.metadata.resourceVersion = "1234"
        #expect(d.revision == 1234)
        d.metadata.resourceVersion = "garbage"
        #expect(d.revision == 0)

        let node = Node(metadata: ObjectMeta(name: "n1", namespace: "ignored"))
        #expect(node.namespace == "", "nodes are cluster-scoped")
        #expect(node.kind == "Node")
        #expect(node.apiVersion == weftAPIVersion)
    }
}
