import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite("PortAllocator")
struct PortAllocatorTests {
    @Test func handsOutDistinctBindablePorts() throws {
        let allocator = PortAllocator()
        var ports: [Int] = []
        for _ in 0..<20 { ports.append(try allocator.allocate()) }
        #expect(Set(ports).count == ports.count)
        #expect(allocator.heldPorts == Set(ports))
        for port in ports {
            #expect(port > 0 && port < 65536)
            #expect(tryBind(port: port) == nil, "port \(port) is not bindable")
        }
    }

    @Test func releaseAndReserve() throws {
        let allocator = PortAllocator(host: "127.0.0.1")
        let port = try allocator.allocate()
        #expect(allocator.reserve(port) == false)
        allocator.release(port)
        #expect(!allocator.heldPorts.contains(port))
        #expect(allocator.reserve(port) == true)
        #expect(allocator.heldPorts.contains(port))
    }

    @Test func rejectsAHostThatIsNotAnAddress() {
        let allocator = PortAllocator(host: "not-an-ip")
        #expect(throws: RuntimeError.self) { try allocator.allocate() }
    }
}
