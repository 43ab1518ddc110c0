import Foundation

/// The cumulative traffic counters every node reported at one moment, for the services one canary
/// analysis looks at. Two snapshots give an interval's traffic: ``since(_:)``.
public struct TrafficSnapshot: Sendable, Hashable {
    /// Node name → sample key (``TrafficSample/key``) → that node's counters, summed over duplicate keys.
    public var nodes: [String: [String: TrafficSample]]

    public init(nodes: [String: [String: TrafficSample]] = [:]) { self.nodes = nodes }

    /// The samples of `services` (`namespace/name`) in each node's `status.traffic`.
    public init(reports: [(node: String, traffic: [TrafficSample])], services: Set<String>) {
        var nodes: [String: [String: TrafficSample]] = [:]
        for (node, traffic) in reports {
            var byKey: [String: TrafficSample] = nodes[node] ?? [:]
            for sample in traffic where services.contains(sample.service) {
                byKey[sample.key] = byKey[sample.key].map { $0.adding(sample) } ?? sample
            }
            nodes[node] = byKey
        }
        self.nodes = nodes
    }

    /// The traffic after `start`, summed over nodes by key. Each node's counters are differenced on their
    /// own: a node whose counter went down (its proxy restarted) counts from zero, and a node that was not
    /// in `start` counts whole.
    public func since(_ start: TrafficSnapshot) -> [String: TrafficSample] {
        var totals: [String: TrafficSample] = [:]
        for (node, samples) in nodes {
            let before = start.nodes[node] ?? [:]
            for (key, current) in samples {
                let delta = before[key].map { current.subtracting($0) } ?? current
                totals[key] = totals[key].map { $0.adding(delta) } ?? delta
            }
        }
        return totals
    }
}

extension TrafficSample {
    /// Both samples' counters together (same key).
    public func adding(_ other: TrafficSample) -> TrafficSample {
        var sum = self
        sum.requests += other.requests
        let count = max(responses.count, other.responses.count)
        sum.responses = (0..<count).map { (responses.indices.contains($0) ? responses[$0] : 0) + (other.responses.indices.contains($0) ? other.responses[$0] : 0) }
        sum.failures += other.failures
        sum.retries += other.retries
        sum.latency = latency.adding(other.latency)
        return sum
    }

    /// The counts recorded after `earlier`, an earlier sample of the same counters. If any counter went
    /// down the counters were reset in between, and the whole of this sample is the interval.
    public func subtracting(_ earlier: TrafficSample) -> TrafficSample {
        let reset = requests < earlier.requests || failures < earlier.failures || retries < earlier.retries
            || zip(responses, earlier.responses).contains { $0 < $1 }
        if reset { return self }
        var delta = self
        delta.requests -= earlier.requests
        delta.responses = responses.enumerated().map { index, count in count - (earlier.responses.indices.contains(index) ? earlier.responses[index] : 0) }
        delta.failures -= earlier.failures
        delta.retries -= earlier.retries
        delta.latency = latency.subtracting(earlier.latency)
        return delta
    }
}

extension VersionMetrics {
    /// The figures of `revision` over an interval: every port of every service in `traffic` (keyed as
    /// ``TrafficSnapshot/since(_:)`` returns them) whose revision it is. Failed requests count against the
    /// success rate even if a proxy did not count them in `requests`.
    public static func measure(revision: String, role: String, in traffic: [String: TrafficSample]) -> VersionMetrics {
        let samples = traffic.values.filter { $0.revision == revision }
        let answered = samples.reduce(0) { $0 + $1.responses.reduce(0, +) }
        let failures = samples.reduce(0) { $0 + $1.failures }
        let requests = max(samples.reduce(0) { $0 + $1.requests }, answered + failures)
        guard requests > 0 else { return VersionMetrics(revision: revision, role: role, requests: 0) }
        let successes = samples.reduce(0) { $0 + $1.successes }
        let latency = samples.reduce(LatencySummary()) { $0.adding($1.latency) }
        let p99 = latency.value(atPercentile: 99).map { Double($0) / 1000 }
        return VersionMetrics(revision: revision, role: role, requests: requests, successRate: Double(successes) / Double(requests), p99Ms: p99)
    }
}

extension CanaryAnalysis {
    /// Judges one interval of the canary's traffic against the thresholds. Fewer than `minRequests`
    /// canary requests make it inconclusive; otherwise it fails on the first threshold broken, with a
    /// reason naming the figure and the threshold.
    public func judge(canary: VersionMetrics, stable: VersionMetrics?, interval: Duration, at time: String) -> AnalysisRun {
        let versions = [stable, canary].compactMap { $0 }
        let c = interval.components
        let window = String(format: "%.1fs", Double(c.seconds) + Double(c.attoseconds) / 1e18)
        let requests = "\(canary.requests) request\(canary.requests == 1 ? "" : "s")"
        if canary.requests < requestsNeeded {
            return AnalysisRun(at: time, outcome: .inconclusive,
                               reason: "canary served \(requests) over \(window), fewer than minRequests \(requestsNeeded)", versions: versions)
        }
        if let threshold = successRate, let rate = canary.successRate, rate < threshold {
            return AnalysisRun(at: time, outcome: .failed,
                               reason: "success rate \(Self.figure(rate)) < \(Self.figure(threshold)) over \(window) (\(requests))", versions: versions)
        }
        if let threshold = p99LatencyMs, let p99 = canary.p99Ms, p99 > Double(threshold) {
            return AnalysisRun(at: time, outcome: .failed,
                               reason: "p99 latency \(Self.figure(p99))ms > \(threshold)ms over \(window) (\(requests))", versions: versions)
        }
        return AnalysisRun(at: time, outcome: .passed, versions: versions)
    }

    /// Up to three decimals, without trailing zeros: `0.51`, `0.995`, `1`, `312.5`.
    static func figure(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
