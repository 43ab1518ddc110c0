/// When to restart a replica whose process exited: at once the first time, then after a delay that
/// doubles per consecutive crash up to a cap. A process that ran long enough resets the count.
public struct RestartBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    /// A run at least this long counts as healthy and resets the crash count.
    public var resetAfter: Duration

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60), resetAfter: Duration = .seconds(120)) {
        self.initial = initial
        self.maximum = maximum
        self.resetAfter = resetAfter
    }

    /// The delay before restart number `consecutiveCrashes` (1 for the first crash in a row).
    public func delay(consecutiveCrashes: Int) -> Duration {
        guard consecutiveCrashes > 1 else { return .zero }
        var delay = initial
        for _ in 0..<(consecutiveCrashes - 2) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }

    /// The crash count after a process that ran for `runTime` exited.
    public func crashesAfterExit(previous: Int, runTime: Duration) -> Int {
        runTime >= resetAfter ? 1 : previous + 1
    }
}

/// Counts consecutive probe results against success and failure thresholds, as kubelet does.
public struct ProbeTracker: Sendable, Equatable {
    public let successThreshold: Int
    public let failureThreshold: Int
    public private(set) var passing: Bool
    private var successes = 0
    private var failures = 0

    /// `initiallyPassing` is false for readiness (not ready until proven) and true for liveness.
    public init(successThreshold: Int, failureThreshold: Int, initiallyPassing: Bool) {
        self.successThreshold = max(1, successThreshold)
        self.failureThreshold = max(1, failureThreshold)
        self.passing = initiallyPassing
    }

    /// Records one probe result; returns the new state when it changed.
    public mutating func record(success: Bool) -> Bool? {
        if success {
            successes += 1
            failures = 0
            if !passing && successes >= successThreshold {
                passing = true
                return true
            }
        } else {
            failures += 1
            successes = 0
            if passing && failures >= failureThreshold {
                passing = false
                return false
            }
        }
        return nil
    }
}
