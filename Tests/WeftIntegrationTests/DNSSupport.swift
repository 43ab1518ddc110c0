#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WeftCore

/// One DNS query over UDP to 127.0.0.1:`port` with Weft's codec, blocking (run it off the pool).
func udpQuery(port: Int, _ name: String, _ type: DNSType, timeout: Double = 2) throws -> DNSMessage {
    let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(descriptor) }
    var time = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestSupportError(description: "connect to DNS port \(port): errno \(errno)") }
    let id = UInt16.random(in: 0...UInt16.max)
    let query = DNSMessage(id: id, questions: [DNSQuestion(name: try DNSName(name), type: type)]).encoded()
    _ = query.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { throw TestSupportError(description: "no DNS answer from 127.0.0.1:\(port) for \(name)") }
    let response = try DNSMessage(decoding: Array(buffer[0..<count]))
    guard response.id == id else { throw TestSupportError(description: "DNS answer with id \(response.id), asked \(id)") }
    return response
}

/// A stub upstream resolver on 127.0.0.1 (UDP only): `upstream.test` A → 127.0.0.99, anything else
/// NXDOMAIN. Serves on a thread of its own until `stop()`.
final class StubResolver: @unchecked Sendable {
    let port: Int
    private let descriptor: Int32
    private let done = NSLock()
    private var stopped = false

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.descriptor = descriptor
        var time = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestSupportError(description: "stub resolver bind: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { self.serve() }
    }

    func stop() {
        done.withLock { stopped = true }
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !done.withLock({ stopped }) {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(descriptor, bytes.baseAddress, bytes.count, 0, $0, &length) }
                }
            }
            guard count > 0, let query = try? DNSMessage(decoding: Array(buffer[0..<count])), let question = query.questions.first else { continue }
            var response = DNSMessage(id: query.id, questions: query.questions, edns: query.edns.map { _ in EDNS() })
            response.flags.isResponse = true
            response.flags.recursionAvailable = true
            if question.name == (try! DNSName("upstream.test")) && question.type == .a {
                response.answers = [DNSRecord(name: question.name, ttl: 30, data: .a(IPv4Address(127, 0, 0, 99)))]
            } else {
                response.responseCode = .nameError
            }
            let bytes = response.encoded()
            _ = bytes.withUnsafeBytes { out in
                withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, out.baseAddress, out.count, 0, $0, length) }
                }
            }
        }
        close(descriptor)
    }
}

/// `dig` output for `arguments` against 127.0.0.1:`port`.
func dig(port: Int, _ arguments: [String]) async throws -> String {
    let child = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/dig"),
                             arguments: ["@127.0.0.1", "-p", String(port), "+time=2", "+tries=1"] + arguments)
    try child.start()
    let exit = try await child.waitForExit(timeout: .seconds(15))
    guard exit == .exited(0) else { throw TestSupportError(description: "dig \(arguments) \(exit)\n\(child.transcript)") }
    return child.lines(.stdout).joined(separator: "\n")
}

let digInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/dig")
