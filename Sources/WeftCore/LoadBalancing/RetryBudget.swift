/// A retry budget like Linkerd's: over a sliding window, retries may add at most `percent` % of the
/// original requests plus `minPerSecond` per second of the window, so retries cannot multiply the load
/// on a service that is failing because it is overloaded.
///
/// Time is passed in (seconds on any monotonic clock), so tests drive it without waiting. The window
/// is kept as one-second buckets; recording and asking do not allocate.
public struct RetryBudget: Sendable {
    /// The length of the window, in seconds.
    public static let windowSeconds = 10

    public let percent: Int
    public let minPerSecond: Int
    private var requests: [Int]
    private var retries: [Int]
    /// The second (since the clock's origin) each bucket holds.
    private var bucketSecond: [Int]

    public init(percent: Int = RetryPolicy.defaultBudgetPercent, minPerSecond: Int = RetryPolicy.defaultMinRetriesPerSecond) {
        self.percent = max(percent, 0)
        self.minPerSecond = max(minPerSecond, 0)
        requests = Array(repeating: 0, count: Self.windowSeconds)
        retries = Array(repeating: 0, count: Self.windowSeconds)
        bucketSecond = Array(repeating: -1, count: Self.windowSeconds)
    }

    public init(_ policy: RetryPolicy?) {
        self.init(percent: policy?.budgetPercent ?? RetryPolicy.defaultBudgetPercent,
                  minPerSecond: policy?.minRetriesPerSecond ?? RetryPolicy.defaultMinRetriesPerSecond)
    }

    /// Counts an original request (not a retry) at `now`.
    public mutating func recordRequest(now: Double) {
        let index = bucket(now)
        requests[index] += 1
    }

    /// Whether a retry at `now` fits in the budget; if it does, it is counted.
    public mutating func tryRetry(now: Double) -> Bool {
        let index = bucket(now)
        let second = bucketSecond[index]
        var requestsInWindow = 0
        var retriesInWindow = 0
        for i in 0..<Self.windowSeconds where bucketSecond[i] > second - Self.windowSeconds && bucketSecond[i] >= 0 {
            requestsInWindow += requests[i]
            retriesInWindow += retries[i]
        }
        let allowed = minPerSecond * Self.windowSeconds + requestsInWindow * percent / 100
        guard retriesInWindow < allowed else { return false }
        retries[index] += 1
        return true
    }

    /// The bucket of the second holding `now`, emptied first when it held an older second.
    private mutating func bucket(_ now: Double) -> Int {
        let second = Int(now.rounded(.down))
        let index = ((second % Self.windowSeconds) + Self.windowSeconds) % Self.windowSeconds
        if bucketSecond[index] != second {
            bucketSecond[index] = second
            requests[index] = 0
            retries[index] = 0
        }
        return index
    }
}
