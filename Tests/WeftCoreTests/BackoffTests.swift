import Testing
@testable import WeftCore

@Suite("RestartBackoff")
struct RestartBackoffTests {
    let backoff = RestartBackoff()

    @Test func defaults() {
        #expect(backoff.initial == .seconds(1))
        #expect(backoff.maximum == .seconds(60))
        #expect(backoff.resetAfter == .seconds(120))
    }

    @Test(arguments: [
        // (consecutive crashes, delay in seconds) with 1 s initial, doubling, 60 s cap
        (0, 0), (1, 0), (2, 1), (3, 2), (4, 4), (5, 8), (6, 16), (7, 32), (8, 60), (9, 60), (50, 60),
    ])
    func delayDoublesUpToTheCap(crashes: Int, seconds: Int) {
        #expect(backoff.delay(consecutiveCrashes: crashes) == .seconds(seconds))
    }

    @Test func veryLongCrashLoopStaysAtTheCap() {
        #expect(backoff.delay(consecutiveCrashes: 10_000) == .seconds(60))
        #expect(backoff.delay(consecutiveCrashes: .max) == .seconds(60))
    }

    @Test func customParameters() {
        let b = RestartBackoff(initial: .milliseconds(500), maximum: .seconds(5), resetAfter: .seconds(10))
        let delays = (1...7).map { b.delay(consecutiveCrashes: $0) }
        #expect(delays == [.zero, .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
    }

    @Test func capBelowInitialWins() {
        let b = RestartBackoff(initial: .seconds(10), maximum: .seconds(3))
        #expect(b.delay(consecutiveCrashes: 2) == .seconds(3))
        #expect(b.delay(consecutiveCrashes: 3) == .seconds(3))
    }

    @Test func delaysNeverDecreaseAndNeverExceedTheCap() {
        var previous = Duration.zero
        for crashes in 1...40 {
            let d = backoff.delay(consecutiveCrashes: crashes)
            #expect(d >= previous)
            #expect(d <= backoff.maximum)
            previous = d
        }
    }

    @Test func crashCountGrowsForShortRunsAndResetsAfterALongRun() {
        #expect(backoff.crashesAfterExit(previous: 0, runTime: .milliseconds(30)) == 1)
        #expect(backoff.crashesAfterExit(previous: 3, runTime: .seconds(5)) == 4)
        #expect(backoff.crashesAfterExit(previous: 7, runTime: .seconds(119)) == 8)
        // Exactly resetAfter counts as a healthy run: this crash is the first of a new series.
        #expect(backoff.crashesAfterExit(previous: 7, runTime: .seconds(120)) == 1)
        #expect(backoff.crashesAfterExit(previous: 7, runTime: .seconds(3600)) == 1)
    }

    @Test func crashLoopScenario() {
        // Five quick crashes, then a long healthy run, then another crash: restarted at once.
        var crashes = 0
        var delays: [Duration] = []
        for _ in 0..<5 {
            crashes = backoff.crashesAfterExit(previous: crashes, runTime: .seconds(1))
            delays.append(backoff.delay(consecutiveCrashes: crashes))
        }
        #expect(delays == [.zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8)])
        crashes = backoff.crashesAfterExit(previous: crashes, runTime: .seconds(600))
        #expect(backoff.delay(consecutiveCrashes: crashes) == .zero)
        crashes = backoff.crashesAfterExit(previous: crashes, runTime: .seconds(1))
        #expect(backoff.delay(consecutiveCrashes: crashes) == .seconds(1))
    }
}

@Suite("ProbeTracker")
struct ProbeTrackerTests {
    @Test func readinessStartsFailingAndNeedsSuccessThreshold() {
        var t = ProbeTracker(successThreshold: 2, failureThreshold: 3, initiallyPassing: false)
        #expect(!t.passing)
        #expect(t.record(success: true) == nil)
        #expect(!t.passing)
        #expect(t.record(success: true) == true)
        #expect(t.passing)
        // Further successes are not changes.
        #expect(t.record(success: true) == nil)
        #expect(t.passing)
    }

    @Test func livenessStartsPassingAndNeedsFailureThreshold() {
        var t = ProbeTracker(successThreshold: 1, failureThreshold: 3, initiallyPassing: true)
        #expect(t.passing)
        #expect(t.record(success: false) == nil)
        #expect(t.record(success: false) == nil)
        #expect(t.passing)
        #expect(t.record(success: false) == false)
        #expect(!t.passing)
        // Failing stays failing without being reported again.
        #expect(t.record(success: false) == nil)
        #expect(t.record(success: false) == nil)
        #expect(t.record(success: true) == true)
    }

    @Test func aSuccessResetsTheFailureCount() {
        var t = ProbeTracker(successThreshold: 1, failureThreshold: 3, initiallyPassing: true)
        let results = [false, false, true, false, false].map { t.record(success: $0) }
        #expect(results.allSatisfy { $0 == nil })
        #expect(t.passing)
        #expect(t.record(success: false) == false)
    }

    @Test func aFailureResetsTheSuccessCount() {
        var t = ProbeTracker(successThreshold: 2, failureThreshold: 1, initiallyPassing: false)
        #expect(t.record(success: true) == nil)
        #expect(t.record(success: false) == false, "the first verdict: not ready")
        #expect(t.record(success: false) == nil, "already failing: no change")
        #expect(t.record(success: true) == nil, "count restarted after the failure")
        #expect(t.record(success: true) == true)
    }

    @Test("readiness that never passes is reported once, after failureThreshold failures in a row")
    func readinessThatNeverPassesGetsAVerdict() {
        var t = ProbeTracker(successThreshold: 1, failureThreshold: 3, initiallyPassing: false)
        #expect(!t.decided)
        #expect(t.record(success: false) == nil)
        #expect(t.record(success: false) == nil)
        #expect(!t.decided, "two failures are not yet a verdict")
        #expect(t.record(success: false) == false)
        #expect(t.decided && !t.passing)
        #expect((0..<5).map { _ in t.record(success: false) }.allSatisfy { $0 == nil }, "reported once")
        #expect(t.record(success: true) == true)
    }

    @Test("a success before the failure threshold restarts the count toward the first verdict")
    func undecidedFailuresNeedARun() {
        var t = ProbeTracker(successThreshold: 2, failureThreshold: 2, initiallyPassing: false)
        let reported = [false, true, false, true, false, false].map { t.record(success: $0) }
        #expect(reported == [nil, nil, nil, nil, nil, false])
    }

    @Test func livenessIsDecidedFromTheStartAndNeverReportsPassing() {
        var t = ProbeTracker(successThreshold: 1, failureThreshold: 1, initiallyPassing: true)
        #expect(t.decided)
        #expect(t.record(success: true) == nil)
        #expect(t.record(success: false) == false)
    }

    @Test(arguments: [0, -5])
    func thresholdsBelowOneMeanOne(threshold: Int) {
        var t = ProbeTracker(successThreshold: threshold, failureThreshold: threshold, initiallyPassing: false)
        #expect(t.successThreshold == 1)
        #expect(t.failureThreshold == 1)
        #expect(t.record(success: true) == true)
        #expect(t.record(success: false) == false)
    }

    @Test func transitionsFollowASequence() {
        // success 2, failure 2, readiness: report exactly the flips.
        var t = ProbeTracker(successThreshold: 2, failureThreshold: 2, initiallyPassing: false)
        let input: [Bool] = [true, true, false, true, false, false, true, false, true, true]
        let reported = input.map { t.record(success: $0) }
        #expect(reported == [nil, true, nil, nil, nil, false, nil, nil, nil, true])
        #expect(t.passing)
    }
}

@Suite("RetryDelay")
struct RetryDelayTests {
    @Test func eachWaitIsInTheUpperHalfOfADoublingCeiling() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var delay = RetryDelay(initial: .milliseconds(200), maximum: .seconds(5))
            for ceiling in [200, 400, 800, 1600, 3200, 5000, 5000].map(Duration.milliseconds) {
                let wait = delay.next(using: &random)
                #expect(wait >= ceiling / 2 && wait <= ceiling, "\(wait) is outside [\(ceiling / 2), \(ceiling)]")
            }
            delay.reset()
            #expect(delay.next(using: &random) <= .milliseconds(200))
        }
    }

    @Test func waitsAreSpreadNotEqual() {
        var delay = RetryDelay(initial: .seconds(1), maximum: .seconds(1))
        let waits = Set((0..<50).map { _ in delay.next() })
        #expect(waits.count > 40, "50 waits gave only \(waits.count) distinct values")
    }
}
