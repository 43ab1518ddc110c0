/// Chooses the revision of each new request (or connection) from a traffic split: smooth weighted
/// round-robin over the revisions that can take it, so over any run of picks with unchanged weights
/// and eligibility each revision's share is exact to within one pick (weight 10 of 100 gets exactly
/// 1,000 of 10,000), whatever the number of backends behind each revision.
///
/// A value type with no clock and no randomness; the proxy keeps one per listener behind its lock.
/// Picking does not allocate once the weights are known.
public struct TrafficSplitPicker: Sendable {
    private var weights: [Int] = []
    private var current: [Int] = []

    public init() {}

    /// The index in `weights` of the chosen revision, or nil when no revision of weight > 0 is
    /// eligible. `isEligible(i)` says whether revision `i` has a backend that can take the request
    /// now; ineligible revisions are skipped and their share goes to the others (by their weights).
    public mutating func pick(weights: [Int], isEligible: (Int) -> Bool) -> Int? {
        if weights != self.weights {
            // A changed split starts a new cycle: old credit would bias the first picks.
            self.weights = weights
            current = Array(repeating: 0, count: weights.count)
        }
        var total = 0
        var best = -1
        for index in weights.indices where weights[index] > 0 && isEligible(index) {
            current[index] += weights[index]
            total += weights[index]
            if best < 0 || current[index] > current[best] { best = index }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return best
    }

    /// `pick` over a listener's split by revision name: the chosen `TrafficWeight.revision`.
    public mutating func pick(from split: [TrafficWeight], isEligible: (String) -> Bool) -> String? {
        pick(weights: split.map(\.weight), isEligible: { isEligible(split[$0].revision) }).map { split[$0].revision }
    }
}
