/// The waits between retries of a call to the API server: doubling from `initial` up to `maximum`,
/// each drawn at random from its upper half ("equal jitter"), so the agents of a cluster that lost
/// their server together do not all come back at the same instant.
public struct RetryDelay: Sendable {
    public let initial: Duration
    public let maximum: Duration
    private var ceiling: Duration

    public init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(5)) {
        precondition(initial > .zero && maximum >= initial, "RetryDelay needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        ceiling = initial
    }

    /// The next wait: between half the current ceiling and the ceiling, which then doubles (up to `maximum`).
    public mutating func next(using random: inout some RandomNumberGenerator) -> Duration {
        let upper = ceiling
        ceiling = min(ceiling * 2, maximum)
        let half = upper / 2
        let nanoseconds = (half.components.seconds * 1_000_000_000) + half.components.attoseconds / 1_000_000_000
        return half + .nanoseconds(Int64.random(in: 0...max(nanoseconds, 0), using: &random))
    }

    public mutating func next() -> Duration {
        var random = SystemRandomNumberGenerator()
        return next(using: &random)
    }

    /// The call succeeded: the next failure waits about `initial` again.
    public mutating func reset() {
        ceiling = initial
    }
}
