import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import WeftRuntime

/// The netns driver's privilege check, which decides whether a replica asking for it starts or stays
/// Pending with the reason; it runs unprivileged.
@Suite("netns driver support")
struct NetnsSupportTests {
    static let allCapabilities: UInt64 = 0x1ff_ffff_ffff

    @Test func rootWithCapabilitiesAndIPCanRunIt() {
        #expect(NetnsDriverSupport.unavailableReason(uid: 0, effectiveCapabilities: Self.allCapabilities, ipPath: "/usr/sbin/ip") == nil)
    }

    @Test func anotherUserCannot() throws {
        let reason = try #require(NetnsDriverSupport.unavailableReason(uid: 1000, effectiveCapabilities: 0, ipPath: "/usr/sbin/ip"))
        #expect(reason.contains("needs root") && reason.contains("runtime: process"), "\(reason)")
    }

    @Test func rootWithoutNetAdminCannot() throws {
        let withoutNetAdmin = Self.allCapabilities & ~(1 << 12)
        let reason = try #require(NetnsDriverSupport.unavailableReason(uid: 0, effectiveCapabilities: withoutNetAdmin, ipPath: "/usr/sbin/ip"))
        #expect(reason.contains("CAP_NET_ADMIN"), "\(reason)")
    }

    @Test func withoutIPCannot() throws {
        let reason = try #require(NetnsDriverSupport.unavailableReason(uid: 0, effectiveCapabilities: Self.allCapabilities, ipPath: nil))
        #expect(reason.contains("iproute2"), "\(reason)")
    }

    @Test func thisProcessAsUnprivilegedUserIsRefused() {
        // The check only reads /proc/self/status and looks for ip; it changes nothing.
        let reason = NetnsDriverSupport.unavailableReason()
        if geteuid() != 0 {
            #expect(reason?.contains("needs root") == true, "\(String(describing: reason))")
        }
    }
}
