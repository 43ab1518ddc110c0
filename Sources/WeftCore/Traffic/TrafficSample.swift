import Histogram

/// What one node's proxy saw of one version of one HTTP service port since the proxy started
/// (cumulative): reported with each node heartbeat in `status.traffic`, summed over nodes and differenced
/// over an interval by canary analysis.
public struct TrafficSample: Codable, Sendable, Hashable {
    /// The service, `namespace/name`.
    public var service: String
    /// The service port.
    public var port: Int
    /// The template hash of the replicas that answered (`Endpoint.revision`); empty when unknown.
    public var revision: String
    /// Requests sent to this version (each retry counts as a request of the version it went to).
    public var requests: Int
    /// Responses by status class: index 0 is 1xx, ..., 4 is 5xx.
    public var responses: [Int]
    /// Requests that got no response: connect failure, reset, timeout.
    public var failures: Int
    /// Requests that were retries.
    public var retries: Int
    /// Time from the request's first byte to the response head, in microseconds.
    public var latency: LatencySummary

    public init(service: String, port: Int, revision: String, requests: Int = 0, responses: [Int] = [0, 0, 0, 0, 0],
                failures: Int = 0, retries: Int = 0, latency: LatencySummary = LatencySummary()) {
        self.service = service
        self.port = port
        self.revision = revision
        self.requests = requests
        self.responses = responses
        self.failures = failures
        self.retries = retries
        self.latency = latency
    }

    /// Requests answered with anything but a 5xx, and not failed.
    public var successes: Int { responses.indices.filter { $0 != 4 }.reduce(0) { $0 + responses[$1] } }
    public var serverErrors: Int { responses.count > 4 ? responses[4] : 0 }

    /// The key samples of one version of one port are summed under.
    public var key: String { "\(service):\(port)@\(revision)" }
}

/// A latency histogram as it travels between processes: only the buckets that hold values, as
/// `[value, count]` pairs in microseconds (HdrHistogram with two significant digits, up to 10 minutes).
/// Summaries from several nodes add up, and a later one minus an earlier one of the same counter is the
/// interval between them.
public struct LatencySummary: Codable, Sendable, Hashable {
    /// `[lowest equivalent value in µs, count]`, ascending by value.
    public var buckets: [[UInt64]]

    public init(buckets: [[UInt64]] = []) { self.buckets = buckets }

    public static let highestTrackableMicroseconds: UInt64 = 600_000_000

    /// An empty histogram with the layout every summary uses.
    public static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestTrackableMicroseconds, numberOfSignificantValueDigits: .two)
    }

    public init(_ histogram: Histogram<UInt64>) {
        var buckets: [[UInt64]] = []
        for value in histogram.recordedValues() where value.count > 0 {
            buckets.append([histogram.lowestEquivalentForValue(value.value), value.count])
        }
        self.buckets = buckets
    }

    public var histogram: Histogram<UInt64> {
        var histogram = Self.makeHistogram()
        for bucket in buckets where bucket.count == 2 {
            _ = histogram.record(min(bucket[0], Self.highestTrackableMicroseconds), count: bucket[1])
        }
        return histogram
    }

    public var count: UInt64 { buckets.reduce(0) { $0 + ($1.count == 2 ? $1[1] : 0) } }

    /// Both summaries' values together.
    public func adding(_ other: LatencySummary) -> LatencySummary {
        var counts: [UInt64: UInt64] = [:]
        for bucket in buckets + other.buckets where bucket.count == 2 { counts[bucket[0], default: 0] += bucket[1] }
        return LatencySummary(buckets: counts.sorted { $0.key < $1.key }.map { [$0.key, $0.value] })
    }

    /// The values recorded after `earlier` (an earlier summary of the same counter). Buckets that shrank,
    /// as after a restart of the proxy, count from zero.
    public func subtracting(_ earlier: LatencySummary) -> LatencySummary {
        var before: [UInt64: UInt64] = [:]
        for bucket in earlier.buckets where bucket.count == 2 { before[bucket[0], default: 0] += bucket[1] }
        var result: [[UInt64]] = []
        for bucket in buckets where bucket.count == 2 {
            let previous = before[bucket[0]] ?? 0
            let count = bucket[1] >= previous ? bucket[1] - previous : bucket[1]
            if count > 0 { result.append([bucket[0], count]) }
        }
        return LatencySummary(buckets: result)
    }

    /// The value at `percentile` (0–100) in microseconds; nil when empty.
    public func value(atPercentile percentile: Double) -> UInt64? {
        guard count > 0 else { return nil }
        return histogram.valueAtPercentile(percentile)
    }
}
