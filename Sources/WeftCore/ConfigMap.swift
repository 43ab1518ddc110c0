import Foundation

/// Configuration a replica reads as environment variables or files: string keys to string values, as in
/// Kubernetes.
public struct ConfigMap: Resource {
    public static let resourceKind = ResourceKind.configMap
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var data: [String: String]?

    public init(metadata: ObjectMeta, data: [String: String]? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.data = data
    }

    /// The value of each key as bytes (UTF-8).
    public var contents: [String: Data] { (data ?? [:]).mapValues { Data($0.utf8) } }
}

/// Confidential configuration: values are base64 in `data`, as in Kubernetes; `stringData` (plain text)
/// is accepted on apply and folded into `data`. The control plane stores secrets encrypted.
public struct Secret: Resource {
    public static let resourceKind = ResourceKind.secret
    public static let defaultType = "Opaque"
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    /// Free-form, `Opaque` when absent.
    public var type: String?
    /// Values in base64.
    public var data: [String: String]?
    /// Plain-text values, written into `data` on apply (they win over `data` for the same key).
    public var stringData: [String: String]?

    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil, stringData: [String: String]? = nil) {
        self.apiVersion = weftAPIVersion
        self.kind = Self.resourceKind.rawValue
        self.metadata = metadata
        self.type = type
        self.data = data
        self.stringData = stringData
    }

    public var resolvedType: String { type ?? Self.defaultType }

    /// The decoded value of each key (keys whose base64 is invalid are left out; validation refuses them).
    public var contents: [String: Data] {
        var out: [String: Data] = [:]
        for (key, value) in data ?? [:] { out[key] = Data(base64Encoded: value) }
        for (key, value) in stringData ?? [:] { out[key] = Data(value.utf8) }
        return out
    }

    /// `stringData` moved into `data` (base64), with the type made explicit.
    public func normalised() -> Secret {
        var copy = self
        var data = self.data ?? [:]
        for (key, value) in stringData ?? [:] { data[key] = Data(value.utf8).base64EncodedString() }
        copy.data = data
        copy.stringData = nil
        copy.type = resolvedType
        return copy
    }
}
