import Foundation
import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

/// A listening IPv4 socket on 127.0.0.1 (blocking), closed by `close()`.
private struct Listener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 8) == 0 else { throw RuntimeError(code: .system, message: "bind/listen failed") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts one connection and returns its fd and the peer's port.
    func accept() -> (fd: Int32, peerPort: Int) {
        var peer = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let connection = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) } }
        return (connection, Int(UInt16(bigEndian: peer.sin_port)))
    }
}

@Suite("Socket owner lookup", .timeLimit(.minutes(1)))
struct SocketOwnerTests {
    @Test func findsTheChildProcessThatOpenedAConnection() async throws {
        #if os(Linux)
        let listener = try Listener()
        defer { close(listener.fd) }
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "client")
            // The connection is opened by a child of the replica's process, which then waits.
            let spec = ProcessSpec(executable: "/bin/bash", arguments: ["-c", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/\(listener.port); exec sleep 30' 3>&-; wait"])
            try await withProcess(spec, log: log) { process in
                let (connection, peerPort) = listener.accept()
                defer { close(connection) }
                let inode = try #require(SocketOwner.inode(localIP: "127.0.0.1", localPort: peerPort, remoteIP: "127.0.0.1", remotePort: listener.port))
                #expect(SocketOwner.owner(ofInode: inode, among: [process.pid]) == process.pid)
                #expect(SocketOwner.owner(ofInode: inode, among: [getpid()]) == nil)
                // The server's end is a different socket, held by this test process.
                let serverInode = try #require(SocketOwner.inode(localIP: "127.0.0.1", localPort: listener.port, remoteIP: "127.0.0.1", remotePort: peerPort))
                #expect(serverInode != inode)
                #expect(SocketOwner.owner(ofInode: serverInode, among: [getpid()]) == getpid())
            }
        }
        #endif
    }

    @Test func findsNothingForAConnectionThatDoesNotExist() throws {
        #expect(SocketOwner.inode(localIP: "127.0.0.1", localPort: 1, remoteIP: "127.0.0.1", remotePort: 2) == nil)
        #expect(SocketOwner.inode(localIP: "not-an-ip", localPort: 1, remoteIP: "127.0.0.1", remotePort: 2) == nil)
    }
}
