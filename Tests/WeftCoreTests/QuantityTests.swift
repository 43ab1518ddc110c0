import Testing
@testable import WeftCore

@Suite("Quantity")
struct QuantityTests {
    @Test(arguments: [
        ("500m", 500), ("0m", 0), ("1m", 1), ("2", 2000), ("0", 0), ("0.5", 500), ("1.25", 1250), ("0.1", 100),
        ("16", 16_000), ("250m", 250), ("1.5", 1500),
    ])
    func cpuMillicores(text: String, millicores: Int) {
        #expect(Quantity.millicores(text) == millicores)
    }

    @Test(arguments: ["", "m", "-1", "-1m", "1.5m", "abc", "1e3", ".5", "5.", "1..2", "1.2.3", "2 ", " 2", "2c", "1Ki", "+1", "١"])
    func malformedCPU(text: String) {
        #expect(Quantity.millicores(text) == nil)
    }

    @Test(arguments: [
        ("1000", 1000), ("0", 0), ("1Ki", 1024), ("64Mi", 64 * 1024 * 1024), ("1Gi", 1 << 30), ("1.5Gi", 3 << 29),
        ("1Ti", 1 << 40), ("1K", 1000), ("1k", 1000), ("500M", 500_000_000), ("2G", 2_000_000_000), ("3T", 3_000_000_000_000),
        ("0.5Ki", 512),
    ] as [(String, Int64)])
    func memoryBytes(text: String, bytes: Int64) {
        #expect(Quantity.bytes(text) == bytes)
    }

    @Test(arguments: ["", "Mi", "64MB", "64mi", "64m", "-1Mi", "-5", "1.5.5Gi", "abc", "1 Gi", "64Mi ", ".5Gi", "5.Gi", "1e9", "1Ki1", "Gi1"])
    func malformedMemory(text: String) {
        #expect(Quantity.bytes(text) == nil)
    }

    /// Absurdly large quantities are refused, not converted (a conversion overflow would trap and take
    /// the API server down while it validates a user's manifest).
    @Test(arguments: ["100000000000000000000", "99999999999999999999999999999999999999", String(repeating: "9", count: 400)])
    func hugeCPUIsRefused(text: String) {
        #expect(Quantity.millicores(text) == nil)
    }

    @Test(arguments: ["10000000000000000000", "100000000000000000000Ki", "99999999999T", "9999999999Gi", String(repeating: "9", count: 400) + "Mi"])
    func hugeMemoryIsRefused(text: String) {
        #expect(Quantity.bytes(text) == nil)
    }

    @Test func largestRepresentableMemoryStillParses() {
        #expect(Quantity.bytes("8Ei") == nil, "exbi suffix is not supported")
        #expect(Quantity.bytes("1000000Ti") == 1_000_000 * (Int64(1) << 40))
        #expect(Quantity.bytes("9000000000000000000") == 9_000_000_000_000_000_000)
    }

    @Test func hugeQuantityInAManifestIsAValidationError() {
        var d = validDeployment()
        d.spec.template.spec.resources = ResourceRequirements(limits: ResourceList(cpu: "100000000000000000000", memory: "99999999999T"))
        let paths = Set(Validation.validate(d).map(\.path))
        #expect(paths == ["spec.template.spec.resources.limits.cpu", "spec.template.spec.resources.limits.memory"])
    }
}

@Suite("IPAddressText")
struct IPAddressTextTests {
    @Test(arguments: ["0.0.0.0", "10.96.0.1", "127.0.0.1", "192.168.1.254", "255.255.255.255", "1.2.3.4"])
    func validIPv4(text: String) {
        #expect(IPAddressText.isIPv4(text))
        #expect(!IPAddressText.isIPv6(text))
        #expect(IPAddressText.isValid(text))
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.999", "01.2.3.4", "1.2.3.00", "1.2.3.", ".1.2.3", "1..2.3",
                      "a.b.c.d", "1.2.3.-4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/24", "١.2.3.4", "0x1.2.3.4", "1234.1.1.1", "localhost"])
    func invalidIPv4(text: String) {
        #expect(!IPAddressText.isIPv4(text))
        #expect(!IPAddressText.isValid(text))
    }

    @Test(arguments: ["::", "::1", "1::", "fe80::1", "FE80::1", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329",
                      "1:2:3:4:5:6:7:8", "1:2:3:4:5:6::8", "1::2:3:4:5:6:7", "::ffff:192.0.2.1", "64:ff9b::192.0.2.33",
                      "1:2:3:4:5:6:10.0.0.1", "::10.0.0.1", "fd00:abcd::"])
    func validIPv6(text: String) {
        #expect(IPAddressText.isIPv6(text))
        #expect(!IPAddressText.isIPv4(text))
        #expect(IPAddressText.isValid(text))
    }

    @Test(arguments: [
        ":", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "g::1", "::1::", "1:2:3:4:5:6:7:8::",
        "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.256", "::1.2.3", "fe80::1%eth0", "[::1]", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8",
        ":::", "1:::2", "::1:", ":1::", "1.2.3.4::", "1.2.3.4::1", "::1.2.3.4:5", "2001:db8::" + String(repeating: "0", count: 40),
    ])
    func invalidIPv6(text: String) {
        #expect(!IPAddressText.isIPv6(text))
        #expect(!IPAddressText.isValid(text))
    }
}

@Suite("IntOrPercent")
struct IntOrPercentTests {
    @Test(arguments: [
        // (percent, total, rounded up, rounded down)
        (25, 3, 1, 0), (25, 4, 1, 1), (25, 10, 3, 2), (25, 1, 1, 0), (25, 0, 0, 0),
        (50, 5, 3, 2), (0, 7, 0, 0), (100, 7, 7, 7), (1, 1, 1, 0), (10, 1000, 100, 100), (33, 10, 4, 3),
    ])
    func percentResolvesWithRounding(percent: Int, total: Int, up: Int, down: Int) {
        #expect(IntOrPercent.percent(percent).resolve(total: total, roundUp: true) == up)
        #expect(IntOrPercent.percent(percent).resolve(total: total, roundUp: false) == down)
    }

    @Test func countIgnoresTotal() {
        #expect(IntOrPercent.count(2).resolve(total: 100, roundUp: true) == 2)
        #expect(IntOrPercent.count(2).resolve(total: 0, roundUp: false) == 2)
    }

    @Test func parsesFromPortReference() {
        #expect(IntOrPercent(.number(3)) == .count(3))
        #expect(IntOrPercent(.number(0)) == .count(0))
        #expect(IntOrPercent(.number(-1)) == nil)
        #expect(IntOrPercent(.name("25%")) == .percent(25))
        #expect(IntOrPercent(.name("0%")) == .percent(0))
        #expect(IntOrPercent(.name("100%")) == .percent(100))
        #expect(IntOrPercent(.name("101%")) == nil)
        #expect(IntOrPercent(.name("-5%")) == nil)
        #expect(IntOrPercent(.name("%")) == nil)
        #expect(IntOrPercent(.name("25")) == nil)
        #expect(IntOrPercent(.name("abc")) == nil)
        #expect(IntOrPercent(.name("2.5%")) == nil)
    }
}
