import Foundation
import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body` with a fresh temporary directory that is removed afterwards, also when `body` throws.
func withTemporaryDirectory<R>(_ body: (String) async throws -> R) async throws -> R {
    var template = Array((NSTemporaryDirectory() + "/weft-runtime-test-XXXXXX").utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard let created else { throw RuntimeError(code: .system, message: "mkdtemp failed") }
    let path = String(cString: created)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Runs `body` with a started process and makes sure the process (and its group) is gone afterwards.
func withProcess<R>(
    _ spec: ProcessSpec,
    log: RotatingLog,
    _ body: (ReplicaProcess) async throws -> R
) async throws -> R {
    let process = try ReplicaProcess.start(spec, log: log)
    do {
        let result = try await body(process)
        await process.stop(grace: .zero)
        return result
    } catch {
        await process.stop(grace: .zero)
        throw error
    }
}

/// Checks `condition` every 10 ms until it holds; throws after `limit` so a broken test fails instead of hanging.
func waitUntil(_ what: String, limit: Duration = .seconds(10), _ condition: () throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: limit)
    while try !condition() {
        if clock.now >= deadline { throw TestTimeout(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Runs `body`, failing with ``TestTimeout`` if it takes longer than `limit`.
func withTimeout<R: Sendable>(
    _ what: String,
    limit: Duration = .seconds(10),
    _ body: @escaping @Sendable () async throws -> R
) async throws -> R {
    try await withThrowingTaskGroup(of: R.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TestTimeout(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

func contents(of path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// `true` while the process exists and is not a zombie.
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = ProcStat.read(pid: pid) else { return false }
    return stat.state != "Z" && stat.state != "X"
}

/// Binds a TCP socket to 127.0.0.1:`port`; returns the errno on failure, nil on success (socket closed again).
func tryBind(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return rc == 0 ? nil : errno
}
