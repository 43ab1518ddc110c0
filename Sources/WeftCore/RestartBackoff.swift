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
///
/// A readiness tracker starts undecided (not passing, no verdict): its first verdict — `successThreshold`
/// successes or `failureThreshold` failures in a row — is reported even when it is "not passing", so a
/// replica that runs but never becomes ready leaves `Starting` for `Running`. A liveness tracker starts
/// decided and passing.
public struct ProbeTracker: Sendable, Equatable {
    public let successThreshold: Int
    public let failureThreshold: Int
    public private(set) var passing: Bool
    /// False until the first verdict of a tracker that started not passing.
    public private(set) var decided: Bool
    private var successes = 0
    private var failures = 0

    /// `initiallyPassing` is false for readiness (not ready until proven) and true for liveness.
    public init(successThreshold: Int, failureThreshold: Int, initiallyPassing: Bool) {
        self.successThreshold = max(1, successThreshold)
        self.failureThreshold = max(1, failureThreshold)
        self.passing = initiallyPassing
        self.decided = initiallyPassing
    }

    /// Records one probe result; returns the new state when it changed or was first decided.
    public mutating func record(success: Bool) -> Bool? {
        if success {
            successes += 1
            failures = 0
            if !passing && successes >= successThreshold {
                passing = true
                decided = true
                return true
            }
        } else {
            failures += 1
            successes = 0
            if (passing || !decided) && failures >= failureThreshold {
                passing = false
                decided = true
                return false
            }
        }
        return nil
    }
}
