import Foundation

/// An exponentially weighted moving average of latency that decays by elapsed time, not by sample
/// count, with Linkerd's peak sensitivity: a sample above the estimate replaces it at once.
///
/// With decay τ, a sample taken Δt after the previous one gets weight `1 - e^(-Δt/τ)`. Between samples
/// `value(at:)` decays toward zero by `e^(-Δt/τ)` (as Linkerd's peak-EWMA does), so a backend that was
/// slow once and then left alone is tried again rather than shunned for ever.
public struct LatencyEWMA: Sendable, Hashable {
    /// The time constant τ in seconds.
    public let decay: Double
    /// Whether a sample above the estimate replaces it (peak-EWMA) instead of being averaged in.
    public let peakSensitive: Bool
    private var estimate: Double?
    private var stamp: Double = 0

    public init(decay: Double = 10, peakSensitive: Bool = true) {
        self.decay = decay > 0 ? decay : 10
        self.peakSensitive = peakSensitive
    }

    /// Folds in a latency sample (seconds) observed at monotonic time `now` (seconds).
    public mutating func record(_ sample: Double, at now: Double) {
        guard sample.isFinite, sample >= 0, now.isFinite else { return }
        guard let estimate else {
            self.estimate = sample
            stamp = now
            return
        }
        if peakSensitive && sample > estimate {
            self.estimate = sample
        } else {
            let keep = exp(-max(0, now - stamp) / decay)
            self.estimate = estimate * keep + sample * (1 - keep)
        }
        stamp = max(stamp, now)
    }

    /// The estimate at `now`: the last one decayed toward zero by the time since the last sample;
    /// nil before the first sample.
    public func value(at now: Double) -> Double? {
        guard let estimate else { return nil }
        return estimate * exp(-max(0, now - stamp) / decay)
    }

    /// The estimate as of the last sample, without decay; nil before the first sample.
    public var lastValue: Double? { estimate }
}
