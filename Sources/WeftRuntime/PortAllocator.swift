#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Hands out free TCP ports on one host address by letting the kernel pick (bind to port 0) and
/// never hands out a port again while it is held.
///
/// The port is free when handed out, but nothing reserves it in the kernel until the replica binds it.
public final class PortAllocator: Sendable {
    /// The IPv4 or IPv6 address ports are allocated on, `127.0.0.1` by default.
    public let host: String
    private let held = Mutex<Set<Int>>([])

    /// Creates an allocator for `host` (an IP address literal).
    public init(host: String = "127.0.0.1") {
        self.host = host
    }

    /// The ports currently held.
    public var heldPorts: Set<Int> { held.withLock { $0 } }

    /// Returns a port that is free on `host` and not already held, and holds it until ``release(_:)``.
    public func allocate() throws -> Int {
        for _ in 0..<64 {
            let port = try Self.kernelChosenPort(host: host)
            let fresh = held.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw RuntimeError(
            code: .portAllocation,
            message: "cannot allocate a port on \(host): the kernel kept returning ports that are already held"
        )
    }

    /// Marks `port` as held without checking it, e.g. for a port a running replica already uses; returns
    /// `false` if it was already held.
    @discardableResult
    public func reserve(_ port: Int) -> Bool {
        held.withLock { $0.insert(port).inserted }
    }

    /// Returns `port` to the pool.
    public func release(_ port: Int) {
        _ = held.withLock { $0.remove(port) }
    }

    private static func kernelChosenPort(host: String) throws -> Int {
        func failure(_ what: String, _ code: Int32) -> RuntimeError {
            RuntimeError(code: .portAllocation, message: "cannot allocate a port on \(host): \(what): \(errnoText(code))", errno: code)
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        let family: Int32
        if inet_pton(AF_INET, host, &v4) == 1 {
            family = AF_INET
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            family = AF_INET6
        } else {
            throw RuntimeError(code: .invalidArgument, message: "cannot allocate a port on '\(host)': not an IP address")
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket", errno) }
        defer { _ = close(fd) }

        var storage = sockaddr_storage()
        var length: socklen_t
        if family == AF_INET {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr = v4
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
            }
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = 0
            address.sin6_addr = v6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: address) { raw.copyMemory(from: $0) }
            }
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw failure("bind", errno) }
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw failure("getsockname", errno) }
        // sin_port and sin6_port sit at the same offset, in network byte order.
        let port = withUnsafeBytes(of: storage) { raw in
            UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        }
        return Int(port)
    }
}
