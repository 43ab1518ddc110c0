import Testing
@testable import WeftCore

/// `#expect` cannot call a mutating method inside its expansion; this records the result of one.
private func check(_ condition: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(condition, sourceLocation: sourceLocation)
}

@Suite("OutlierDetector")
struct OutlierDetectorTests {
    let config = OutlierDetection(consecutiveFailures: 3, baseEjectionSeconds: 5, maxEjectionSeconds: 30, maxEjectedPercent: 50)

    @Test func defaults() throws {
        let d = OutlierDetection()
        #expect(d.consecutiveFailures == 5 && d.baseEjectionSeconds == 5 && d.maxEjectionSeconds == 300 && d.maxEjectedPercent == 50)
        let decoded = try StrictDecoder.decode(OutlierDetection.self, from: json(#"{"consecutiveFailures": 2}"#))
        #expect(decoded == OutlierDetection(consecutiveFailures: 2))
        #expect(throws: FieldError.self) { try StrictDecoder.decode(OutlierDetection.self, from: json(#"{"consecutive": 2}"#)) }
    }

    @Test func ejectsAfterConsecutiveFailuresAndReturnsWhenTimeIsUp() {
        var detector = OutlierDetector(config)
        check(!detector.recordFailure("a", poolSize: 4, now: 0))
        check(!detector.recordFailure("a", poolSize: 4, now: 1))
        check(detector.recordFailure("a", poolSize: 4, now: 2))
        #expect(detector.isEjected("a", now: 2))
        #expect(detector.isEjected("a", now: 6.9))
        #expect(detector.ejected(now: 3) == ["a"])
        #expect(!detector.isEjected("a", now: 7))
        #expect(detector.ejected(now: 7).isEmpty)
        #expect(detector.ejectionCount == 1)
        #expect(!detector.isEjected("b", now: 2))
    }

    @Test func successResetsTheCount() {
        var detector = OutlierDetector(config)
        detector.recordFailure("a", poolSize: 4, now: 0)
        detector.recordFailure("a", poolSize: 4, now: 0)
        detector.recordSuccess("a", now: 0)
        check(!detector.recordFailure("a", poolSize: 4, now: 0))
        check(!detector.recordFailure("a", poolSize: 4, now: 0))
        check(detector.recordFailure("a", poolSize: 4, now: 0))
    }

    @Test func failuresWhileEjectedDoNotCount() {
        var detector = OutlierDetector(config)
        for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: 0) }
        for _ in 0..<10 { check(!detector.recordFailure("a", poolSize: 4, now: 1)) }
        #expect(detector.ejectionCount == 1)
        #expect(!detector.isEjected("a", now: 5))
    }

    @Test func ejectionTimeDoublesAndCaps() {
        var detector = OutlierDetector(config)
        var now = 0.0
        var durations: [Double] = []
        for _ in 0..<6 {
            for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: now) }
            let start = now
            while detector.isEjected("a", now: now) { now += 0.5 }
            durations.append(now - start)
        }
        #expect(durations == [5, 10, 20, 30, 30, 30])
        #expect(config.ejectionSeconds(forEjection: 1_000) == 30)
    }

    @Test func streakStartsOverAfterStayingInForTheMaximumTime() {
        var detector = OutlierDetector(config)
        for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: 0) } // 5 s
        for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: 5) } // 10 s, back at 15
        for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: 45) } // in for 30 s: 5 s again
        #expect(detector.isEjected("a", now: 49.9))
        #expect(!detector.isEjected("a", now: 50))
    }

    @Test func maxEjectedPercentIsRespected() {
        var detector = OutlierDetector(config)
        for id in ["a", "b", "c", "d"] {
            for _ in 0..<3 { detector.recordFailure(id, poolSize: 4, now: 0) }
        }
        #expect(detector.ejected(now: 0) == ["a", "b"])
        // c is at the threshold: once a and b are back, its next failure ejects it.
        check(detector.recordFailure("c", poolSize: 4, now: 5))
        #expect(detector.ejected(now: 5) == ["c"])
    }

    @Test(arguments: [
        // (pool size, percent, max ejected)
        (0, 50, 0), (1, 50, 0), (1, 100, 0), (2, 50, 1), (2, 10, 1), (4, 50, 2), (5, 50, 2), (10, 10, 1),
        (10, 100, 9), (3, 0, 0), (20, 25, 5),
    ])
    func maxEjectedRule(pool: Int, percent: Int, expected: Int) {
        #expect(OutlierDetection(maxEjectedPercent: percent).maxEjected(poolSize: pool) == expected)
    }

    @Test func theOnlyBackendIsNeverEjected() {
        var detector = OutlierDetector(config)
        for _ in 0..<10 { check(!detector.recordFailure("a", poolSize: 1, now: 0)) }
        #expect(!detector.isEjected("a", now: 0))
    }

    @Test func forgetDropsTheBackend() {
        var detector = OutlierDetector(config)
        for _ in 0..<3 { detector.recordFailure("a", poolSize: 4, now: 0) }
        detector.forget("a")
        #expect(!detector.isEjected("a", now: 1))
        #expect(detector.ejectionCount == 1)
        check(!detector.recordFailure("a", poolSize: 4, now: 1)) // counting starts over
    }

    @Test func zeroThresholdDisablesEjection() {
        var detector = OutlierDetector(OutlierDetection(consecutiveFailures: 0))
        for _ in 0..<100 { check(!detector.recordFailure("a", poolSize: 4, now: 0)) }
    }
}
