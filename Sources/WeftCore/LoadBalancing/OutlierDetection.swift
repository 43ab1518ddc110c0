/// Passive outlier detection settings (Envoy's consecutive-failure detector).
public struct OutlierDetection: Codable, Sendable, Hashable {
    /// Consecutive failures that eject a backend; 0 or less turns ejection off.
    public var consecutiveFailures: Int = 5
    /// The first ejection lasts this long; the k-th lasts `base × 2^(k-1)`, capped at `maxEjectionSeconds`.
    public var baseEjectionSeconds: Double = 5
    /// The longest an ejection lasts; also how long a backend must stay in before k starts again at 1.
    public var maxEjectionSeconds: Double = 300
    /// At most this percentage of the pool (rounded down, but at least 1 in a pool of 2 or more) is
    /// ejected at once, and never the last remaining backend.
    public var maxEjectedPercent: Int = 50

    public init(consecutiveFailures: Int = 5, baseEjectionSeconds: Double = 5, maxEjectionSeconds: Double = 300, maxEjectedPercent: Int = 50) {
        self.consecutiveFailures = consecutiveFailures
        self.baseEjectionSeconds = baseEjectionSeconds
        self.maxEjectionSeconds = maxEjectionSeconds
        self.maxEjectedPercent = maxEjectedPercent
    }

    private enum CodingKeys: String, CodingKey {
        case consecutiveFailures, baseEjectionSeconds, maxEjectionSeconds, maxEjectedPercent
    }

    public init(from decoder: any Decoder) throws {
        let defaults = OutlierDetection()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        consecutiveFailures = try container.decodeIfPresent(Int.self, forKey: .consecutiveFailures) ?? defaults.consecutiveFailures
        baseEjectionSeconds = try container.decodeIfPresent(Double.self, forKey: .baseEjectionSeconds) ?? defaults.baseEjectionSeconds
        maxEjectionSeconds = try container.decodeIfPresent(Double.self, forKey: .maxEjectionSeconds) ?? defaults.maxEjectionSeconds
        maxEjectedPercent = try container.decodeIfPresent(Int.self, forKey: .maxEjectedPercent) ?? defaults.maxEjectedPercent
    }

    /// How many backends of a pool of `poolSize` may be ejected at the same time:
    /// `floor(poolSize × maxEjectedPercent / 100)`, raised to 1 when the percentage is positive and the
    /// pool has 2 or more backends, and never more than `poolSize - 1`.
    public func maxEjected(poolSize: Int) -> Int {
        guard poolSize > 1, maxEjectedPercent > 0 else { return 0 }
        let byPercent = poolSize * min(maxEjectedPercent, 100) / 100
        return min(max(byPercent, 1), poolSize - 1)
    }

    /// How long ejection number `k` (1 for the first) lasts.
    public func ejectionSeconds(forEjection k: Int) -> Double {
        guard k > 1 else { return min(baseEjectionSeconds, maxEjectionSeconds) }
        let exponent = min(k - 1, 62)
        let seconds = baseEjectionSeconds * Double(UInt64(1) << UInt64(exponent))
        return min(seconds, maxEjectionSeconds)
    }
}

/// Passive outlier detection with Envoy semantics: `consecutiveFailures` failures in a row eject a backend
/// for `base × 2^(k-1)` seconds (k = times ejected, capped at the maximum); a success resets the count;
/// an ejected backend returns when its time is up. Times are injected monotonic seconds.
public struct OutlierDetector: Sendable {
    /// The settings this detector applies.
    public let configuration: OutlierDetection
    /// Total ejections so far (for counters).
    public private(set) var ejectionCount: Int = 0

    private struct BackendState: Sendable {
        var consecutiveFailures = 0
        /// Times ejected in the current streak (k); reset when the backend stayed in for `maxEjectionSeconds`.
        var ejections = 0
        var ejectedUntil: Double?
    }
    private var states: [String: BackendState] = [:]

    public init(_ configuration: OutlierDetection = OutlierDetection()) {
        self.configuration = configuration
    }

    /// Records a successful connection (or request) to `id`: its consecutive failure count starts again.
    /// Whether any backend has failures, an ejection or a history of ejections (when not, a success
    /// changes nothing).
    public var tracksAny: Bool { !states.isEmpty }

    public mutating func recordSuccess(_ id: String, now: Double) {
        guard var state = states[id] else { return }
        state.consecutiveFailures = 0
        if state.ejections == 0 && state.ejectedUntil == nil {
            states[id] = nil
        } else {
            states[id] = state
        }
    }

    /// Records a failed connection (or request) to `id` in a pool of `poolSize` backends.
    /// Returns true when this failure ejected the backend.
    @discardableResult
    public mutating func recordFailure(_ id: String, poolSize: Int, now: Double) -> Bool {
        guard configuration.consecutiveFailures > 0 else { return false }
        var state = states[id] ?? BackendState()
        if let until = state.ejectedUntil, now < until {
            // Late failures of connections opened before the ejection do not count.
            return false
        }
        state.consecutiveFailures += 1
        defer { states[id] = state }
        guard state.consecutiveFailures >= configuration.consecutiveFailures else { return false }
        guard ejectedCount(now: now) < configuration.maxEjected(poolSize: poolSize) else {
            // No room now; the count stays at the threshold so the next failure tries again.
            return false
        }
        if let returned = state.ejectedUntil, now - returned >= configuration.maxEjectionSeconds {
            state.ejections = 0
        }
        state.ejections += 1
        state.consecutiveFailures = 0
        state.ejectedUntil = now + configuration.ejectionSeconds(forEjection: state.ejections)
        ejectionCount += 1
        return true
    }

    /// Whether `id` is ejected at `now`.
    public func isEjected(_ id: String, now: Double) -> Bool {
        guard let until = states[id]?.ejectedUntil else { return false }
        return now < until
    }

    /// The ids ejected at `now` (pass to `LoadBalancer.pick(excluding:)`).
    public func ejected(now: Double) -> Set<String> {
        var result: Set<String> = []
        for (id, state) in states {
            if let until = state.ejectedUntil, now < until { result.insert(id) }
        }
        return result
    }

    /// When `id`'s current ejection ends, or nil when it is not ejected at `now`.
    public func ejectionEnd(_ id: String, now: Double) -> Double? {
        guard let until = states[id]?.ejectedUntil, now < until else { return nil }
        return until
    }

    /// Drops everything known about `id` (the backend left the pool).
    public mutating func forget(_ id: String) {
        states[id] = nil
    }

    private func ejectedCount(now: Double) -> Int {
        var count = 0
        for state in states.values {
            if let until = state.ejectedUntil, now < until { count += 1 }
        }
        return count
    }
}
