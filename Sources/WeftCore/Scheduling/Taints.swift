/// A mark on a node that keeps replicas off it unless they tolerate it, as in Kubernetes.
///
/// Only the `NoSchedule` effect exists: a taint stops new placements and leaves running replicas alone.
public struct Taint: Codable, Sendable, Hashable {
    public static let noSchedule = "NoSchedule"

    public var key: String
    public var value: String?
    /// `NoSchedule`, the only effect.
    public var effect: String

    public init(key: String, value: String? = nil, effect: String = Taint.noSchedule) {
        self.key = key
        self.value = value
        self.effect = effect
    }
}

/// Lets a replica be placed on nodes with a matching taint.
public struct Toleration: Codable, Sendable, Hashable {
    /// The taint key; empty with `operator: Exists` tolerates every taint.
    public var key: String?
    /// `Equal` (default: key and value must match) or `Exists` (any value of the key).
    public var `operator`: String?
    public var value: String?
    /// The effect tolerated; empty tolerates every effect.
    public var effect: String?

    public init(key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
    }

    public static let equal = "Equal"
    public static let exists = "Exists"

    /// Whether this toleration matches `taint` (Kubernetes' rules).
    public func tolerates(_ taint: Taint) -> Bool {
        if let effect, !effect.isEmpty, effect != taint.effect { return false }
        let key = self.key ?? ""
        if (self.operator ?? Self.equal) == Self.exists {
            return key.isEmpty || key == taint.key
        }
        return key == taint.key && (value ?? "") == (taint.value ?? "")
    }
}

extension Array where Element == Toleration {
    /// Whether every taint in `taints` is tolerated by one of these tolerations.
    public func tolerateAll(_ taints: [Taint]) -> Bool {
        taints.allSatisfy { taint in contains { $0.tolerates(taint) } }
    }
}
