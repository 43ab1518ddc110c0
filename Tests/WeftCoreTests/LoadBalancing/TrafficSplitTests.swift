import Testing
@testable import WeftCore

@Suite struct TrafficSplitPickerTests {
    private func shares(_ weights: [Int], picks: Int, eligible: Set<Int>? = nil) -> [Int] {
        var picker = TrafficSplitPicker()
        var counts = Array(repeating: 0, count: weights.count)
        for _ in 0..<picks {
            if let index = picker.pick(weights: weights, isEligible: { eligible?.contains($0) ?? true }) {
                counts[index] += 1
            }
        }
        return counts
    }

    @Test(arguments: [1, 5, 10, 25, 50, 90, 99])
    func canaryShareIsExactWithinOnePercentagePoint(canary: Int) {
        let counts = shares([100 - canary, canary], picks: 10_000)
        #expect(counts.reduce(0, +) == 10_000)
        // Smooth weighted round-robin is exact over each cycle of 100 picks.
        #expect(abs(counts[1] - canary * 100) <= 1)
        #expect(abs(Double(counts[1]) / 100 - Double(canary)) <= 1.0)
    }

    @Test func everyPrefixStaysCloseToTheWeights() {
        var picker = TrafficSplitPicker()
        var canary = 0
        for n in 1...10_000 {
            if picker.pick(weights: [90, 10], isEligible: { _ in true }) == 1 { canary += 1 }
            // Never more than one pick away from the ideal share: no bursts to the canary.
            #expect(abs(Double(canary) - Double(n) * 0.1) <= 1.0)
        }
    }

    @Test func ineligibleRevisionSendsEverythingToTheOthers() {
        #expect(shares([90, 10], picks: 1_000, eligible: [0]) == [1_000, 0])
        #expect(shares([50, 30, 20], picks: 1_000, eligible: [1, 2]) == [0, 600, 400])
    }

    @Test func zeroWeightsAndNothingEligibleGiveNil() {
        var picker = TrafficSplitPicker()
        #expect(picker.pick(weights: [0, 0], isEligible: { _ in true }) == nil)
        #expect(picker.pick(weights: [50, 50], isEligible: { _ in false }) == nil)
        #expect(picker.pick(weights: [], isEligible: { _ in true }) == nil)
        #expect(shares([0, 100], picks: 10) == [0, 10])
    }

    @Test func changedWeightsStartANewCycle() {
        var picker = TrafficSplitPicker()
        for _ in 0..<7 { _ = picker.pick(weights: [50, 50], isEligible: { _ in true }) }
        var canary = 0
        for _ in 0..<100 where picker.pick(weights: [80, 20], isEligible: { _ in true }) == 1 { canary += 1 }
        #expect(canary == 20)
    }

    @Test func picksByRevisionName() {
        var picker = TrafficSplitPicker()
        let split = [TrafficWeight(revision: "stable", weight: 75), TrafficWeight(revision: "canary", weight: 25)]
        var counts: [String: Int] = [:]
        for _ in 0..<400 { counts[picker.pick(from: split, isEligible: { _ in true })!, default: 0] += 1 }
        #expect(counts == ["stable": 300, "canary": 100])
    }
}

@Suite struct RetryBudgetTests {
    @Test func minimumAllowsRetriesWithoutTraffic() {
        var budget = RetryBudget(percent: 20, minPerSecond: 1)
        var allowed = 0
        for _ in 0..<30 where budget.tryRetry(now: 100.5) { allowed += 1 }
        #expect(allowed == 10)  // 1 per second over a 10 s window
    }

    @Test func percentOfRequestsInTheWindow() {
        var budget = RetryBudget(percent: 20, minPerSecond: 0)
        for _ in 0..<100 { budget.recordRequest(now: 5.0) }
        var allowed = 0
        for _ in 0..<50 where budget.tryRetry(now: 5.5) { allowed += 1 }
        #expect(allowed == 20)
    }

    @Test func zeroBudgetAllowsNothing() {
        var budget = RetryBudget(percent: 0, minPerSecond: 0)
        for _ in 0..<1_000 { budget.recordRequest(now: 1) }
        let allowed = budget.tryRetry(now: 1)
        #expect(!allowed)
    }

    @Test func oldRequestsAndRetriesLeaveTheWindow() {
        var budget = RetryBudget(percent: 10, minPerSecond: 0)
        for _ in 0..<100 { budget.recordRequest(now: 0.2) }
        var allowed = 0
        for _ in 0..<20 where budget.tryRetry(now: 3) { allowed += 1 }
        #expect(allowed == 10)
        // 10 s later the requests of second 0 are gone, and so are the retries of second 3 after 13 s.
        let afterTen = budget.tryRetry(now: 10.5)
        #expect(!afterTen)
        for _ in 0..<100 { budget.recordRequest(now: 13.1) }
        let afterThirteen = budget.tryRetry(now: 13.2)
        #expect(afterThirteen)
    }

    @Test func defaultsFollowThePolicy() {
        let budget = RetryBudget(RetryPolicy(attempts: 1, budgetPercent: 5, minRetriesPerSecond: 2))
        #expect(budget.percent == 5 && budget.minPerSecond == 2)
        let defaults = RetryBudget(nil)
        #expect(defaults.percent == RetryPolicy.defaultBudgetPercent && defaults.minPerSecond == RetryPolicy.defaultMinRetriesPerSecond)
    }
}
