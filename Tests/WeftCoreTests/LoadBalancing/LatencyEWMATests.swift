import Foundation
import Testing
@testable import WeftCore

@Suite("LatencyEWMA")
struct LatencyEWMATests {
    @Test func unknownUntilTheFirstSample() {
        var ewma = LatencyEWMA()
        #expect(ewma.value(at: 0) == nil)
        ewma.record(0.020, at: 100)
        #expect(ewma.value(at: 100) == 0.020)
    }

    @Test func weightsSamplesByElapsedTime() {
        var ewma = LatencyEWMA(decay: 10, peakSensitive: false)
        ewma.record(0.100, at: 0)
        ewma.record(0.010, at: 10)
        // Old estimate keeps e^-1 of its weight after one time constant.
        let keep = exp(-1.0)
        #expect(abs(ewma.lastValue! - (0.100 * keep + 0.010 * (1 - keep))) < 1e-12)
        // Two samples at the same instant: the second has no weight (time, not count, decides).
        var burst = LatencyEWMA(decay: 10, peakSensitive: false)
        burst.record(0.100, at: 5)
        for _ in 0..<1000 { burst.record(0.001, at: 5) }
        #expect(burst.lastValue == 0.100)
        // A sample long after the previous one all but replaces it.
        burst.record(0.001, at: 1000)
        #expect(abs(burst.lastValue! - 0.001) < 1e-9)
    }

    @Test func peakReplacesAtOnceThenDecays() {
        var ewma = LatencyEWMA(decay: 10)
        ewma.record(0.010, at: 0)
        ewma.record(0.500, at: 1)
        #expect(ewma.lastValue == 0.500)
        ewma.record(0.010, at: 11)
        let keep = exp(-1.0)
        #expect(abs(ewma.lastValue! - (0.500 * keep + 0.010 * (1 - keep))) < 1e-12)
    }

    @Test func valueDecaysTowardZeroBetweenSamples() {
        var ewma = LatencyEWMA(decay: 10)
        ewma.record(0.200, at: 50)
        #expect(abs(ewma.value(at: 60)! - 0.200 * exp(-1.0)) < 1e-12)
        #expect(abs(ewma.value(at: 80)! - 0.200 * exp(-3.0)) < 1e-12)
        #expect(ewma.value(at: 40) == 0.200) // a clock read before the sample does not inflate it
    }

    @Test func ignoresNonsense() {
        var ewma = LatencyEWMA()
        ewma.record(.nan, at: 0)
        ewma.record(-1, at: 0)
        ewma.record(.infinity, at: 0)
        #expect(ewma.value(at: 0) == nil)
    }
}
