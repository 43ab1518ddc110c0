/// An object a user may apply.
public enum AppliedObject: Sendable, Equatable {
    case deployment(Deployment)
    case service(Service)
    case authorizationPolicy(AuthorizationPolicy)
    case peerAuthentication(PeerAuthentication)
    case configMap(ConfigMap)
    case secret(Secret)

    public var kind: ResourceKind {
        switch self {
        case .deployment: return .deployment
        case .service: return .service
        case .authorizationPolicy: return .authorizationPolicy
        case .peerAuthentication: return .peerAuthentication
        case .configMap: return .configMap
        case .secret: return .secret
        }
    }

    public var metadata: ObjectMeta {
        switch self {
        case .deployment(let d): return d.metadata
        case .service(let s): return s.metadata
        case .authorizationPolicy(let p): return p.metadata
        case .peerAuthentication(let p): return p.metadata
        case .configMap(let c): return c.metadata
        case .secret(let s): return s.metadata
        }
    }
}

/// All the problems found in one manifest document.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `Kind/name` when they could be read, for messages such as `Deployment/cart: spec.replicas: ...`.
    public var object: String?
    public var errors: [FieldError]

    public init(object: String?, errors: [FieldError]) {
        self.object = object
        self.errors = errors
    }

    public var description: String {
        errors.map { (object.map { "\($0): " } ?? "") + $0.description }.joined(separator: "\n")
    }
}

/// Turns one decoded manifest document into a checked, normalised object.
public enum Manifest {
    /// Decodes and validates `document`. The result has its namespace defaulted to `namespace` and
    /// server-managed fields (uid, resourceVersion, timestamps, generation, status) removed.
    public static func decode(_ document: JSONValue, defaultNamespace namespace: String = defaultNamespace) throws(ManifestError) -> AppliedObject {
        guard case .object(let members) = document else {
            throw ManifestError(object: nil, errors: [FieldError(path: "", message: "a manifest must be an object with apiVersion, kind, metadata and spec, got \(document.typeDescription)")])
        }
        let objectName = members["metadata"]?["name"]?.stringValue
        let kindText = members["kind"]?.stringValue
        let label = kindText.map { k in objectName.map { "\(k)/\($0)" } ?? k }
        guard let kindText else {
            throw ManifestError(object: label, errors: [FieldError(path: "kind", message: "is required (\(appliedKinds(joinedBy: "or")))")])
        }
        guard let kind = ResourceKind(rawValue: kindText) else {
            throw ManifestError(object: label, errors: [FieldError(path: "kind", message: "unknown kind \"\(kindText)\"; Weft accepts \(appliedKinds(joinedBy: "and"))")])
        }
        guard kind.isUserManaged else {
            throw ManifestError(object: label, errors: [FieldError(path: "kind", message: "\(kind.rawValue) objects are managed by Weft and cannot be applied")])
        }
        func decoded<T: Decodable>(_ type: T.Type) throws(ManifestError) -> T {
            do throws(FieldError) {
                return try StrictDecoder.decode(type, from: document)
            } catch {
                throw ManifestError(object: label, errors: [error])
            }
        }
        let object: AppliedObject
        let errors: [FieldError]
        switch kind {
        case .deployment:
            var deployment = try decoded(Deployment.self)
            deployment.metadata = normalised(deployment.metadata, namespace: namespace)
            deployment.status = nil
            errors = Validation.validate(deployment)
            object = .deployment(deployment)
        case .service:
            var service = try decoded(Service.self)
            service.metadata = normalised(service.metadata, namespace: namespace)
            errors = Validation.validate(service)
            object = .service(service)
        case .authorizationPolicy:
            var policy = try decoded(AuthorizationPolicy.self)
            policy.metadata = normalised(policy.metadata, namespace: namespace)
            errors = Validation.validate(policy)
            object = .authorizationPolicy(policy)
        case .peerAuthentication:
            var peerAuthentication = try decoded(PeerAuthentication.self)
            peerAuthentication.metadata = normalised(peerAuthentication.metadata, namespace: namespace)
            errors = Validation.validate(peerAuthentication)
            object = .peerAuthentication(peerAuthentication)
        case .configMap:
            var configMap = try decoded(ConfigMap.self)
            configMap.metadata = normalised(configMap.metadata, namespace: namespace)
            errors = Validation.validate(configMap)
            object = .configMap(configMap)
        case .secret:
            var secret = try decoded(Secret.self)
            secret.metadata = normalised(secret.metadata, namespace: namespace)
            errors = Validation.validate(secret)
            object = .secret(secret.normalised())
        case .replica, .node, .endpoints:
            preconditionFailure("not user-managed")
        }
        guard errors.isEmpty else { throw ManifestError(object: label, errors: errors) }
        return object
    }

    /// `Deployment, Service, AuthorizationPolicy and PeerAuthentication`.
    static func appliedKinds(joinedBy conjunction: String) -> String {
        let names = ResourceKind.allCases.filter(\.isUserManaged).map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " \(conjunction) " + names[names.count - 1]
    }

    static func normalised(_ metadata: ObjectMeta, namespace: String) -> ObjectMeta {
        var m = ObjectMeta(name: metadata.name, namespace: metadata.namespace ?? namespace, labels: metadata.labels)
        m.annotations = metadata.annotations
        return m
    }
}
