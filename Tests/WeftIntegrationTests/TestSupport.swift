// Helpers for integration tests that run this package's executables as child processes and talk to them
// over HTTP on 127.0.0.1. Reusable by every test in WeftIntegrationTests.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A test-harness failure: says what went wrong and, where useful, what the child printed.
struct TestSupportError: Error, CustomStringConvertible {
    var description: String
}

// MARK: - Built executables

/// Locates the executables of this package (`weft`, `weft-demo`) that `swift test` built.
enum WeftBuild {
    /// The build products directory, e.g. `.build/x86_64-unknown-linux-gnu/debug`.
    ///
    /// Tried in order: `$WEFT_BUILD_DIR`; the directory of the running test binary (`swift test` puts
    /// `weftPackageTests.xctest` next to the executables); the `.xctest` bundle's parent on Darwin;
    /// `<package>/.build/debug` derived from this file's path.
    static func productsDirectory() throws -> URL {
        let candidates = candidateDirectories()
        let found = candidates.first { directory in
            FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("weft-demo").path)
        }
        guard let found else {
            throw TestSupportError(description:
                "cannot find the built executables (weft-demo); looked in \(candidates.map(\.path)); set WEFT_BUILD_DIR")
        }
        return found
    }

    /// The built executable `name`, e.g. `try WeftBuild.executable("weft-demo")`.
    static func executable(_ name: String) throws -> URL {
        let url = try productsDirectory().appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TestSupportError(description: "\(url.path) is not a built executable; is \(name) a product of this package?")
        }
        return url
    }

    private static func candidateDirectories() -> [URL] {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["WEFT_BUILD_DIR"], !override.isEmpty {
            candidates.append(URL(fileURLWithPath: override))
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(binary.deletingLastPathComponent())
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug"))
        return candidates
    }
}

// MARK: - Child processes

/// A child process whose stdout and stderr are captured line by line.
///
/// Prefer `withChildProcess`, which also cleans up when the test fails or throws.
final class ChildProcess: @unchecked Sendable {
    enum Stream: Sendable {
        case stdout, stderr
    }

    /// How the child ended.
    enum Exit: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    let executable: URL
    let arguments: [String]
    private let process = Process()
    private let lock = NSLock()
    private var lines: [Stream: [String]] = [.stdout: [], .stderr: []]
    private var partial: [Stream: Data] = [.stdout: Data(), .stderr: Data()]
    private var openStreams = 2

    /// - Parameters:
    ///   - environment: added to (and overriding) the test runner's environment, or the whole environment
    ///     when `inheritEnvironment` is false.
    init(
        executable: URL,
        arguments: [String] = [],
        environment: [String: String] = [:],
        inheritEnvironment: Bool = true
    ) {
        self.executable = executable
        self.arguments = arguments
        process.executableURL = executable
        process.arguments = arguments
        var fullEnvironment = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        fullEnvironment.merge(environment) { _, new in new }
        process.environment = fullEnvironment
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Starts the child and the threads that read its output.
    func start() throws {
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        startReading(stdoutPipe.fileHandleForReading, into: .stdout)
        startReading(stderrPipe.fileHandleForReading, into: .stderr)
    }

    var processIdentifier: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    /// Complete lines printed so far on `stream`, without their newlines.
    func lines(_ stream: Stream) -> [String] {
        lock.withLock { lines[stream] ?? [] }
    }

    /// Everything printed on both streams, for failure messages.
    var transcript: String {
        lock.withLock {
            "stdout:\n" + (lines[.stdout] ?? []).joined(separator: "\n")
                + "\nstderr:\n" + (lines[.stderr] ?? []).joined(separator: "\n")
        }
    }

    /// Waits until a line on `stream` starts with `prefix` and returns it.
    ///
    /// Fails early when the child exits (and its output is fully read) without printing such a line.
    @discardableResult
    func waitForLine(
        startingWith prefix: String,
        on stream: Stream = .stdout,
        timeout: Duration = .seconds(10)
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (match, outputClosed) = lock.withLock {
                ((lines[stream] ?? []).first { $0.hasPrefix(prefix) }, openStreams == 0)
            }
            if let match { return match }
            if outputClosed && !process.isRunning {
                throw TestSupportError(description:
                    "\(executable.lastPathComponent) \(exitDescription) before printing \"\(prefix)…\"\n\(transcript)")
            }
            if ContinuousClock.now >= deadline {
                throw TestSupportError(description:
                    "\(executable.lastPathComponent) printed no line starting with \"\(prefix)\" within \(timeout)\n\(transcript)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the child to end (and its output to be read) and says how.
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> Exit {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning || lock.withLock({ openStreams > 0 }) {
            if ContinuousClock.now >= deadline {
                throw TestSupportError(description:
                    "\(executable.lastPathComponent) still running after \(timeout)\n\(transcript)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return exit
    }

    /// Sends `signal` (e.g. `SIGTERM`) to the child if it still runs.
    func send(_ signal: Int32) {
        if process.isRunning {
            kill(process.processIdentifier, signal)
        }
    }

    /// SIGTERM, then SIGKILL after `gracePeriod`; returns once the child is gone. Never throws.
    func terminate(gracePeriod: Duration = .seconds(3)) async {
        guard process.isRunning else { return }
        send(SIGTERM)
        let deadline = ContinuousClock.now + gracePeriod
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            send(SIGKILL)
            while process.isRunning {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    private var exit: Exit {
        switch process.terminationReason {
        case .exit: .exited(process.terminationStatus)
        case .uncaughtSignal: .signalled(process.terminationStatus)
        @unknown default: .exited(process.terminationStatus)
        }
    }

    private var exitDescription: String {
        process.isRunning ? "closed its output" : exit.description
    }

    private func startReading(_ handle: FileHandle, into stream: Stream) {
        let thread = Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                append(chunk, to: stream)
            }
            finish(stream)
        }
        thread.name = "\(executable.lastPathComponent) \(stream)"
        thread.start()
    }

    private func append(_ chunk: Data, to stream: Stream) {
        lock.withLock {
            var buffer = (partial[stream] ?? Data()) + chunk
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                lines[stream, default: []].append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer = Data(buffer[(newline + 1)...])
            }
            partial[stream] = buffer
        }
    }

    private func finish(_ stream: Stream) {
        lock.withLock {
            if let rest = partial[stream], !rest.isEmpty {
                lines[stream, default: []].append(String(decoding: rest, as: UTF8.self))
            }
            partial[stream] = Data()
            openStreams -= 1
        }
    }
}

/// Starts `executable`, runs `body` with it, and always terminates it afterwards (SIGTERM, then SIGKILL),
/// also when `body` throws.
@discardableResult
func withChildProcess<Result>(
    _ executable: URL,
    arguments: [String] = [],
    environment: [String: String] = [:],
    inheritEnvironment: Bool = true,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ChildProcess) async throws -> Result
) async throws -> Result {
    let child = ChildProcess(
        executable: executable, arguments: arguments, environment: environment, inheritEnvironment: inheritEnvironment
    )
    try child.start()
    do {
        let result = try await body(child)
        await child.terminate()
        return result
    } catch {
        await child.terminate()
        throw error
    }
}

// MARK: - weft-demo

/// A running `weft-demo` started by `withWeftDemo`.
struct RunningDemo: Sendable {
    let process: ChildProcess
    /// `127.0.0.1:port`, as printed on its "listening on" line.
    let address: String
    let port: Int
}

/// The environment variables weft-demo reads; cleared from the inherited environment so the runner's
/// own values cannot leak in.
let weftDemoVariables = [
    "PORT", "BIND", "VERSION", "FAIL_RATE", "DELAY_MS", "UPSTREAM",
    "SERVICE_NAME", "WEFT_DEPLOYMENT", "WEFT_REPLICA_NAME", "WEFT_REPLICA_IP", "WEFT_DNS", "WEFT_CLUSTER_DOMAIN", "WEFT_NAMESPACE",
]

/// Starts `weft-demo` on 127.0.0.1 and a free port (unless `environment` sets `PORT`/`BIND`), waits for
/// its "listening on" line, runs `body`, and always terminates it.
@discardableResult
func withWeftDemo<Result>(
    environment: [String: String] = [:],
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RunningDemo) async throws -> Result
) async throws -> Result {
    var fullEnvironment = ProcessInfo.processInfo.environment
    for name in weftDemoVariables {
        fullEnvironment[name] = nil
    }
    fullEnvironment["BIND"] = "127.0.0.1"
    fullEnvironment["PORT"] = "0"  // weft-demo binds a port the kernel picks and prints it
    fullEnvironment.merge(environment) { _, new in new }
    return try await withChildProcess(
        try WeftBuild.executable("weft-demo"), environment: fullEnvironment, inheritEnvironment: false
    ) { child in
        let line = try await child.waitForLine(startingWith: "weft-demo listening on ")
        let address = String(line.dropFirst("weft-demo listening on ".count))
        guard let port = address.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw TestSupportError(description: "cannot read a port from \"\(line)\"")
        }
        return try await body(RunningDemo(process: child, address: address, port: port))
    }
}

// MARK: - Ports

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, released).
///
/// Another process may take it before the caller binds it; for servers that accept `PORT=0` and print
/// their address, prefer that.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestSupportError(description: "socket() failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    guard bound == 0 else { throw TestSupportError(description: "bind(127.0.0.1:0) failed: errno \(errno)") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError(description: "getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

// MARK: - HTTP

/// A complete HTTP response as read by `httpGet`.
struct HTTPResult: Sendable, CustomStringConvertible {
    var status: Int
    /// Header names lowercased; a repeated header keeps its last value.
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object.
    func jsonObject() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw TestSupportError(description: "body is not a JSON object: \(text)")
        }
        return object
    }

    var description: String { "\(status) \(text)" }
}

/// `GET path` on `127.0.0.1:port` over a fresh HTTP/1.1 connection (`Connection: close`).
func httpGet(port: Int, path: String = "/", timeout: Duration = .seconds(5)) async throws -> HTTPResult {
    try await httpGet(host: "127.0.0.1", port: port, path: path, timeout: timeout)
}

/// `GET path` on an IPv4 `host:port` over a fresh HTTP/1.1 connection (`Connection: close`).
///
/// Blocking socket I/O, run off the Swift concurrency pool; handles Content-Length, chunked and
/// read-until-close bodies.
func httpGet(host: String, port: Int, path: String = "/", timeout: Duration = .seconds(5)) async throws -> HTTPResult {
    try await offThePool { try blockingGet(host: host, port: port, path: path, timeout: timeout) }
}

/// Runs blocking work on a Dispatch thread, so it never holds one of the few Swift concurrency threads.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}

private func blockingGet(host: String, port: Int, path: String, timeout: Duration) throws -> HTTPResult {
    let connection = try BlockingHTTPConnection(host: host, port: port, timeout: timeout)
    try connection.write("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: weft-tests\r\nConnection: close\r\n\r\n")
    return try connection.readResponse()
}

/// One blocking IPv4 TCP connection that writes raw request bytes and reads responses one at a time:
/// what `httpGet` uses, and what a test that pipelines requests uses directly.
final class BlockingHTTPConnection {
    private let descriptor: Int32
    private let peer: String
    private var received = Data()

    init(host: String, port: Int, timeout: Duration = .seconds(5)) throws {
        peer = "\(host):\(port)"
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError(description: "socket() failed: errno \(errno)") }
        var socketTimeout = timeval(
            tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000)
        )
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &socketTimeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &socketTimeout, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(descriptor)
            throw TestSupportError(description: "\(host) is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw TestSupportError(description: "connect to \(peer) failed: \(reason)")
        }
    }

    deinit { close(descriptor) }

    func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestSupportError(description: "send to \(peer) failed: errno \(errno)") }
            sent += written
        }
    }

    /// Reads until one whole response is buffered (or the peer closes) and returns it; bytes after it stay
    /// buffered for the next call.
    func readResponse() throws -> HTTPResult {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            if let (response, used) = try parseResponse(received) {
                received.removeFirst(used)
                return response
            }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw TestSupportError(description:
                    "reading from \(peer) failed (\(String(cString: strerror(errno)))) after \(received.count) bytes")
            }
            received.append(contentsOf: chunk[0..<count])
        }
        guard let (response, used) = try parseResponse(received, atEndOfStream: true) else {
            throw TestSupportError(description:
                "incomplete response from \(peer): \(String(decoding: received, as: UTF8.self))")
        }
        received.removeFirst(used)
        return response
    }
}

/// The first response in `data` and the bytes it spans, nil while incomplete; a body without length ends
/// with the data.
private func parseResponse(_ data: Data, atEndOfStream: Bool = false) throws -> (HTTPResult, Int)? {
    guard let headerEnd = data.firstRange(of: Data("\r\n\r\n".utf8)) else { return nil }
    let headerLines = String(decoding: data[data.startIndex..<headerEnd.lowerBound], as: UTF8.self)
        .components(separatedBy: "\r\n")
    let statusParts = headerLines[0].split(separator: " ", maxSplits: 2)
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
        throw TestSupportError(description: "bad status line: \(headerLines[0])")
    }
    var headers: [String: String] = [:]
    for line in headerLines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let headerLength = headerEnd.upperBound - data.startIndex
    let rest = Data(data[headerEnd.upperBound...])
    if let length = headers["content-length"].flatMap({ Int($0) }) {
        guard rest.count >= length else { return nil }
        return (HTTPResult(status: status, headers: headers, body: rest.prefix(length)), headerLength + length)
    }
    if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
        var body = Data()
        var cursor = rest.startIndex
        while true {
            guard let lineEnd = rest[cursor...].firstRange(of: Data("\r\n".utf8)) else { return nil }
            let sizeText = String(decoding: rest[cursor..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw TestSupportError(description: "bad chunk size \"\(sizeText)\"")
            }
            let start = lineEnd.upperBound
            if size == 0 {
                guard rest.endIndex >= start + 2 else { return nil }
                return (HTTPResult(status: status, headers: headers, body: body), headerLength + start + 2)
            }
            guard rest.endIndex >= start + size + 2 else { return nil }
            body.append(rest[start..<(start + size)])
            cursor = start + size + 2
        }
    }
    if status == 204 || status == 304 {
        return (HTTPResult(status: status, headers: headers, body: Data()), headerLength)
    }
    return atEndOfStream ? (HTTPResult(status: status, headers: headers, body: rest), data.count) : nil
}
