/// Decides which `GET /` answers fail under `FAIL_RATE`.
///
/// A SplitMix64 generator per connection, seeded once from the system generator, so that a request costs
/// no system call.
struct FailureDice {
    private var state: UInt64

    init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.state = seed
    }

    /// True for a share `rate` of the calls; exact at 0 and 1.
    mutating func roll(_ rate: Double) -> Bool {
        if rate <= 0 { return false }
        if rate >= 1 { return true }
        return Double(next() >> 11) * 0x1p-53 < rate
    }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
