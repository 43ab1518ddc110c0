#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds which local process holds one end of a TCP connection on this host: the kernel's socket
/// diagnostics (`NETLINK_SOCK_DIAG`, an exact lookup by the four-tuple) give the socket's inode, and
/// the `/proc/<pid>/fd` links of the candidate processes (and their children) tell who holds it.
///
/// The node proxy uses it to learn which replica opened a connection to a service VIP, when replicas
/// share the node's address (the process driver). Linux only; elsewhere every lookup finds nothing.
public enum SocketOwner {
    /// The inode of the TCP socket whose own address is `local` and whose peer is `remote` (IPv4 or
    /// IPv6 literals), or nil when there is none.
    public static func inode(localIP: String, localPort: Int, remoteIP: String, remotePort: Int) -> UInt64? {
        #if os(Linux)
        guard let local = IPBytes(localIP), let remote = IPBytes(remoteIP), local.family == remote.family else { return nil }
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 4 /* NETLINK_SOCK_DIAG */)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // nlmsghdr (16) + inet_diag_req_v2 (8 + inet_diag_sockid 48) = 72 bytes, host order except ports
        // and addresses.
        var request = [UInt8](repeating: 0, count: 72)
        put32(&request, 0, 72)
        put16(&request, 4, 20)  // SOCK_DIAG_BY_FAMILY
        put16(&request, 6, 1)  // NLM_F_REQUEST: an exact lookup, not a dump
        put32(&request, 8, 1)  // sequence
        request[16] = local.family == 4 ? UInt8(AF_INET) : UInt8(AF_INET6)
        request[17] = UInt8(IPPROTO_TCP)
        put32(&request, 20, 0xFFFF_FFFF)  // any state
        request[24] = UInt8(localPort >> 8)
        request[25] = UInt8(localPort & 0xFF)
        request[26] = UInt8(remotePort >> 8)
        request[27] = UInt8(remotePort & 0xFF)
        for (i, byte) in local.bytes.enumerated() { request[28 + i] = byte }
        for (i, byte) in remote.bytes.enumerated() { request[44 + i] = byte }
        put32(&request, 60, 0)  // any interface
        put32(&request, 64, 0xFFFF_FFFF)  // INET_DIAG_NOCOOKIE
        put32(&request, 68, 0xFFFF_FFFF)

        // An unconnected netlink socket sends to the kernel.
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { return nil }
        var reply = [UInt8](repeating: 0, count: 8192)
        let received = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        // nlmsghdr, then inet_diag_msg: family, state, timer, retrans (4), sockid (48), expires, rqueue,
        // wqueue, uid (16), inode at 68.
        guard received >= 16 + 72, get16(reply, 4) == 20 else { return nil }
        let inode = UInt64(get32(reply, 16 + 68))
        return inode == 0 ? nil : inode
        #else
        return nil
        #endif
    }

    /// The one of `pids` that holds the socket with `inode`, itself or through a child (three
    /// generations down), or nil.
    public static func owner(ofInode inode: UInt64, among pids: [Int32]) -> Int32? {
        #if os(Linux)
        let target = Array("socket:[\(inode)]".utf8)
        var generation = pids.map { (pid: $0, root: $0) }
        for _ in 0..<4 where !generation.isEmpty {
            for member in generation where holds(member.pid, target) { return member.root }
            generation = generation.flatMap { member in children(of: member.pid).map { (pid: $0, root: member.root) } }
        }
        #endif
        return nil
    }

    #if os(Linux)
    private static func holds(_ pid: Int32, _ target: [UInt8]) -> Bool {
        let directory = "/proc/\(pid)/fd"
        guard let dir = opendir(directory) else { return false }
        defer { closedir(dir) }
        var link = [UInt8](repeating: 0, count: 64)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                return String(decoding: bytes[0..<(bytes.firstIndex(of: 0) ?? bytes.count)], as: UTF8.self)
            }
            guard name.first?.isNumber == true else { continue }
            let n = link.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { readlink("\(directory)/\(name)", $0.baseAddress!, $0.count) }
            }
            if n == target.count, link[0..<n].elementsEqual(target) { return true }
        }
        return false
    }

    private static func children(of pid: Int32) -> [Int32] {
        guard let text = readSmallFile("/proc/\(pid)/task/\(pid)/children") else { return [] }
        return text.split(separator: UInt8(ascii: " ")).compactMap { Int32(String(decoding: $0, as: UTF8.self)) }
    }

    private struct IPBytes {
        var family: Int
        /// 16 bytes: an IPv4 address in the first four.
        var bytes: [UInt8]

        init?(_ text: String) {
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                family = 4
                bytes = withUnsafeBytes(of: v4) { Array($0) } + [UInt8](repeating: 0, count: 12)
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                family = 6
                bytes = withUnsafeBytes(of: v6) { Array($0) }
            } else {
                return nil
            }
        }
    }

    private static func put16(_ buffer: inout [UInt8], _ offset: Int, _ value: UInt16) {
        withUnsafeBytes(of: value) { for i in 0..<2 { buffer[offset + i] = $0[i] } }
    }

    private static func put32(_ buffer: inout [UInt8], _ offset: Int, _ value: UInt32) {
        withUnsafeBytes(of: value) { for i in 0..<4 { buffer[offset + i] = $0[i] } }
    }

    private static func get16(_ buffer: [UInt8], _ offset: Int) -> UInt16 {
        buffer[offset..<(offset + 2)].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
    }

    private static func get32(_ buffer: [UInt8], _ offset: Int) -> UInt32 {
        buffer[offset..<(offset + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }
    #endif
}
