/// A canary rollout: the new template's replicas run beside the stable ones and receive a growing share
/// of the traffic, step by step, while analysis of their success rate and latency passes.
///
/// ```yaml
/// strategy:
///   type: Canary
///   canary:
///     steps: [{setWeight: 10}, {pause: {duration: 30s}}, {setWeight: 50}, {pause: {}}, {setWeight: 100}]
///     analysis: {successRate: 0.99, p99LatencyMs: 300, interval: 10s, failureLimit: 2}
/// ```
public struct CanaryStrategy: Codable, Sendable, Hashable {
    public var steps: [CanaryStep]
    public var analysis: CanaryAnalysis?

    public init(steps: [CanaryStep], analysis: CanaryAnalysis? = nil) {
        self.steps = steps
        self.analysis = analysis
    }
}

/// One step: exactly one of `setWeight` (the canary's share of requests, 0–100) or `pause`.
public struct CanaryStep: Codable, Sendable, Hashable {
    public var setWeight: Int?
    public var pause: CanaryPause?

    public init(setWeight: Int? = nil, pause: CanaryPause? = nil) {
        self.setWeight = setWeight
        self.pause = pause
    }
}

/// Waits `duration` (`30s`, `5m`, `1h`), or, without one, until `weft rollout promote`.
public struct CanaryPause: Codable, Sendable, Hashable {
    public var duration: String?

    public init(duration: String? = nil) { self.duration = duration }
}

/// What the canary must keep up, measured over each `interval` from the requests the node proxies saw
/// (services with `appProtocol: http`). An interval that breaks a threshold is a failure; at
/// `failureLimit` failures the rollout aborts.
public struct CanaryAnalysis: Codable, Sendable, Hashable {
    /// Minimum share of the canary's requests answered without a 5xx or a failure (0–1).
    public var successRate: Double?
    /// Maximum 99th-percentile latency of the canary's requests, in milliseconds.
    public var p99LatencyMs: Int?
    /// How often analysis runs; default `10s`.
    public var interval: String?
    /// Failed intervals that abort the rollout; default 2.
    public var failureLimit: Int?
    /// An interval in which the canary served fewer requests than this is inconclusive: neither passes nor
    /// fails. Default 20.
    public var minRequests: Int?

    public init(successRate: Double? = nil, p99LatencyMs: Int? = nil, interval: String? = nil, failureLimit: Int? = nil, minRequests: Int? = nil) {
        self.successRate = successRate
        self.p99LatencyMs = p99LatencyMs
        self.interval = interval
        self.failureLimit = failureLimit
        self.minRequests = minRequests
    }

    public static let defaultInterval = Duration.seconds(10)
    public static let defaultFailureLimit = 2
    public static let defaultMinRequests = 20

    /// `interval` parsed, or the default (an invalid text is refused by validation).
    public var intervalDuration: Duration { interval.flatMap(DurationText.parse) ?? Self.defaultInterval }
    public var failures: Int { failureLimit ?? Self.defaultFailureLimit }
    public var requestsNeeded: Int { minRequests ?? Self.defaultMinRequests }
}

/// Durations as manifests write them: a whole number and a unit, `500ms`, `30s`, `5m`, `1h`, or
/// several in a row (`1m30s`).
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        var total = Duration.zero
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 9, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += .milliseconds(value)
            case "s": total += .seconds(value)
            case "m": total += .seconds(value * 60)
            case "h": total += .seconds(value * 3600)
            default: return nil
            }
        }
        return total
    }

    /// `1m30s`, `10s`, `250ms`: the shortest text `parse` reads back as `duration` (whole milliseconds).
    public static func format(_ duration: Duration) -> String {
        var ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms <= 0 { return "0s" }
        var out = ""
        let h = ms / 3_600_000; ms %= 3_600_000
        let m = ms / 60_000; ms %= 60_000
        let s = ms / 1000; ms %= 1000
        if h > 0 { out += "\(h)h" }
        if m > 0 { out += "\(m)m" }
        if s > 0 { out += "\(s)s" }
        if ms > 0 { out += "\(ms)ms" }
        return out
    }
}
