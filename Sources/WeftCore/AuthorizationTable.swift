/// The mesh identity of a stream's source: the namespace and service account of its certificate
/// (`spiffe://<domain>/ns/<namespace>/sa/<serviceAccount>`).
public struct SourcePrincipal: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var serviceAccount: String

    public init(namespace: String, serviceAccount: String) {
        self.namespace = namespace
        self.serviceAccount = serviceAccount
    }

    /// `namespace/serviceAccount`, as AuthorizationPolicies write it.
    public var description: String { "\(namespace)/\(serviceAccount)" }
}

/// Whether a new stream may reach a service.
public enum AuthorizationDecision: Sendable, Hashable {
    case allow
    /// `reason` names the source, the destination service and the objects that refuse the stream, for logs.
    case deny(reason: String)

    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }
}

/// The mesh's AuthorizationPolicies and PeerAuthentications, indexed so that a decision is one or two
/// dictionary lookups: the node proxy asks for every new stream.
///
/// A source without a mesh identity (`nil`: plaintext, from outside the mesh) is refused in a namespace
/// where a PeerAuthentication says `STRICT`. A service that no policy selects accepts every other source;
/// one that policies select accepts a source only when a rule of one of them matches it, which a source
/// without a mesh identity never does.
public struct AuthorizationTable: Sendable {
    private var services: [ServiceKey: AllowedSources] = [:]
    /// Namespace → its STRICT PeerAuthentications, as `namespace/name`, sorted.
    private var strictNamespaces: [String: [String]] = [:]

    public init(policies: [AuthorizationPolicy] = [], peerAuthentications: [PeerAuthentication] = []) {
        for policy in policies {
            let key = ServiceKey(namespace: policy.namespace, service: policy.spec.service)
            services[key, default: AllowedSources()].add(policy)
        }
        for key in services.keys { services[key]?.seal() }
        for peer in peerAuthentications where peer.spec.mtls.mutualTLSMode == .strict {
            strictNamespaces[peer.namespace, default: []].append("\(peer.namespace)/\(peer.name)")
        }
        for namespace in strictNamespaces.keys { strictNamespaces[namespace]?.sort() }
    }

    /// Whether `source` may open a stream to the Service `service` in `namespace`.
    public func decide(namespace: String, service: String, source: SourcePrincipal?) -> AuthorizationDecision {
        if source == nil, let peers = strictNamespaces[namespace] {
            let names = peers.count == 1 ? "PeerAuthentication \(peers[0])" : "PeerAuthentications \(peers.joined(separator: ", "))"
            return .deny(reason: "\(Self.describe(source)) may not reach service \(namespace)/\(service): "
                + "\(names) \(peers.count == 1 ? "requires" : "require") mutual TLS (STRICT) in namespace \(namespace)")
        }
        guard let allowed = services[ServiceKey(namespace: namespace, service: service)] else { return .allow }
        if let source, allowed.allows(source) { return .allow }
        let why: String
        if allowed.ruleCount == 0 {
            why = "\(allowed.policyNames) \(allowed.policyCount == 1 ? "allows" : "allow") no source (allow: [])"
        } else {
            why = "no rule of \(allowed.policyNames) allows it" + (source == nil ? " (rules match mesh identities only)" : "")
        }
        return .deny(reason: "\(Self.describe(source)) may not reach service \(namespace)/\(service): \(why)")
    }

    /// Whether a PeerAuthentication in `namespace` says STRICT.
    public func isStrict(namespace: String) -> Bool { strictNamespaces[namespace] != nil }

    /// Whether some AuthorizationPolicy selects the service.
    public func hasPolicies(namespace: String, service: String) -> Bool {
        services[ServiceKey(namespace: namespace, service: service)] != nil
    }

    static func describe(_ source: SourcePrincipal?) -> String {
        source.map { "service account \($0)" } ?? "a source without a mesh identity"
    }
}

private struct ServiceKey: Hashable, Sendable {
    var namespace: String
    var service: String
}

/// The rules of every policy that selects one service, merged: a source is allowed when any part matches.
private struct AllowedSources: Sendable {
    /// A rule without fields: every mesh identity.
    var anyIdentity = false
    /// Rules with namespaces only.
    var namespaces: Set<String> = []
    /// Rules with service accounts, resolved to exact identities (a bare name with namespaces is one
    /// identity per namespace).
    var principals: Set<SourcePrincipal> = []
    var ruleCount = 0
    var policies: [String] = []
    /// `AuthorizationPolicy ns/a` or `AuthorizationPolicies ns/a, ns/b`, made once for deny reasons.
    var policyNames = ""

    var policyCount: Int { policies.count }

    func allows(_ source: SourcePrincipal) -> Bool {
        anyIdentity || namespaces.contains(source.namespace) || principals.contains(source)
    }

    mutating func add(_ policy: AuthorizationPolicy) {
        policies.append("\(policy.namespace)/\(policy.name)")
        ruleCount += policy.spec.allow.count
        for rule in policy.spec.allow {
            let references = rule.serviceAccounts?.compactMap(ServiceAccountReference.init)
            switch (references, rule.namespaces) {
            case (nil, nil):
                anyIdentity = true
            case (nil, let listed?):
                namespaces.formUnion(listed)
            case (let references?, nil):
                for reference in references {
                    principals.insert(SourcePrincipal(namespace: reference.namespace ?? policy.namespace, serviceAccount: reference.name))
                }
            case (let references?, let listed?):
                // Both fields must match: a bare name in each listed namespace, a qualified one only if listed.
                let listed = Set(listed)
                for reference in references {
                    if let namespace = reference.namespace {
                        if listed.contains(namespace) { principals.insert(SourcePrincipal(namespace: namespace, serviceAccount: reference.name)) }
                    } else {
                        for namespace in listed { principals.insert(SourcePrincipal(namespace: namespace, serviceAccount: reference.name)) }
                    }
                }
            }
        }
    }

    mutating func seal() {
        policies.sort()
        policyNames = (policies.count == 1 ? "AuthorizationPolicy " : "AuthorizationPolicies ") + policies.joined(separator: ", ")
    }
}
