#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The outcome of one probe run.
public enum ProbeResult: Sendable, Hashable, CustomStringConvertible {
    /// The probe passed.
    case success
    /// The probe failed; `reason` says why in words an operator can act on.
    case failure(reason: String)

    /// `true` for ``success``.
    public var isSuccess: Bool { self == .success }

    /// "success" or the failure reason.
    public var description: String {
        switch self {
        case .success: return "success"
        case .failure(let reason): return reason
        }
    }
}

/// A health check against a replica: an HTTP GET, a TCP connect, or a command run to completion.
public enum ProbeAction: Sendable, Hashable {
    /// GET `path` over HTTP/1.1; a 2xx or 3xx status is success. `timeout` covers connect and response.
    case httpGet(host: String, port: Int, path: String, timeout: Duration)
    /// Opens (and closes) a TCP connection; success once connected within `timeout`.
    case tcpConnect(host: String, port: Int, timeout: Duration)
    /// Runs `command` (argv; `command[0]` looked up in the environment's `PATH`) with exactly `environment`;
    /// exit code 0 is success. The command's process group is killed on timeout.
    case exec(command: [String], environment: [String: String], timeout: Duration)

    /// Runs the probe once; network probes use `group`, and no outcome is reported as a thrown error.
    public func run(on group: any EventLoopGroup) async -> ProbeResult {
        switch self {
        case .httpGet(let host, let port, let path, let timeout):
            return await Self.httpGet(host: host, port: port, path: path, timeout: timeout, group: group)
        case .tcpConnect(let host, let port, let timeout):
            return await Self.tcpConnect(host: host, port: port, timeout: timeout, group: group)
        case .exec(let command, let environment, let timeout):
            return await Self.exec(command: command, environment: environment, timeout: timeout)
        }
    }

    // MARK: HTTP

    private static func httpGet(host: String, port: Int, path: String, timeout: Duration, group: any EventLoopGroup) async -> ProbeResult {
        let path = path.hasPrefix("/") ? path : "/" + path
        let target = "http://\(hostAndPort(host, port))\(path)"
        let loop = group.next()
        let status = loop.makePromise(of: Int.self)
        let deadline = loop.scheduleTask(in: timeout.timeAmount) { status.fail(ProbeTimeout()) }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(hostAndPort(host, port))\r\nUser-Agent: weft-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(timeout.timeAmount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HTTPStatusLineHandler(request: request, status: status))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { status.fail($0) }
        status.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        do {
            let code = try await status.futureResult.get()
            if (200..<400).contains(code) { return .success }
            return .failure(reason: "HTTP probe failed with statuscode \(code) (GET \(target))")
        } catch is ProbeTimeout {
            return .failure(reason: "HTTP GET \(target) timed out after \(timeout.humanReadable)")
        } catch let error as HTTPProbeError {
            return .failure(reason: "HTTP GET \(target) failed: \(error.message)")
        } catch {
            return .failure(reason: describeConnectFailure(error, host: host, port: port, timeout: timeout))
        }
    }

    // MARK: TCP

    private static func tcpConnect(host: String, port: Int, timeout: Duration, group: any EventLoopGroup) async -> ProbeResult {
        let loop = group.next()
        let outcome = loop.makePromise(of: Void.self)
        let deadline = loop.scheduleTask(in: timeout.timeAmount) { outcome.fail(ProbeTimeout()) }
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(timeout.timeAmount)
            .connect(host: host, port: port)
        connected.whenComplete { result in
            switch result {
            case .success: outcome.succeed()
            case .failure(let error): outcome.fail(error)
            }
        }
        outcome.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        do {
            try await outcome.futureResult.get()
            return .success
        } catch {
            return .failure(reason: describeConnectFailure(error, host: host, port: port, timeout: timeout))
        }
    }

    // MARK: Exec

    private static func exec(command: [String], environment: [String: String], timeout: Duration) async -> ProbeResult {
        guard let executable = command.first else {
            return .failure(reason: "exec probe has an empty command")
        }
        let shown = command.joined(separator: " ")
        let output = OutputCapture(limit: 512)
        let process: ReplicaProcess
        do {
            process = try ReplicaProcess.start(
                ProcessSpec(executable: executable, arguments: Array(command.dropFirst()), environment: environment),
                logger: Logger(label: "weft.runtime.probe"),
                output: { output.append($0) }
            )
        } catch {
            return .failure(reason: "exec probe: \(error)")
        }
        let exit: ExitStatus? = await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await process.waitForExit() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            if first == nil { await process.stop(grace: .zero) }
            group.cancelAll()
            return first
        }
        guard let exit else {
            return .failure(reason: "exec probe '\(shown)' timed out after \(timeout.humanReadable)")
        }
        if exit.isSuccess { return .success }
        let text = output.text
        return .failure(reason: "exec probe '\(shown)' \(exit)" + (text.isEmpty ? "" : ": \(text)"))
    }
}

/// Formats `host:port`, bracketing IPv6 literals.
private func hostAndPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}

private struct ProbeTimeout: Error {}

private struct HTTPProbeError: Error {
    var message: String
}

/// Turns NIO connect errors into "connect to 127.0.0.1:4000 refused" and the like.
private func describeConnectFailure(_ error: any Error, host: String, port: Int, timeout: Duration) -> String {
    let target = "connect to \(hostAndPort(host, port))"
    if error is ProbeTimeout { return "\(target) timed out after \(timeout.humanReadable)" }
    if let error = error as? ChannelError, case .connectTimeout = error {
        return "\(target) timed out after \(timeout.humanReadable)"
    }
    if let error = error as? NIOConnectionError {
        if let first = error.connectionErrors.first {
            return describeConnectFailure(first.error, host: host, port: port, timeout: timeout)
        }
        if let dns = error.dnsAError ?? error.dnsAAAAError {
            return "\(target) failed: cannot resolve '\(host)': \(dns)"
        }
        return "\(target) failed: no addresses for '\(host)'"
    }
    if let error = error as? IOError {
        switch error.errnoCode {
        case ECONNREFUSED: return "\(target) refused"
        case ETIMEDOUT: return "\(target) timed out after \(timeout.humanReadable)"
        default: return "\(target) failed: \(errnoText(error.errnoCode))"
        }
    }
    return "\(target) failed: \(error)"
}

/// Keeps the first bytes a probe command prints, for the failure reason.
final class OutputCapture: Sendable {
    private let limit: Int
    private let bytes = Mutex<[UInt8]>([])

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: UnsafeRawBufferPointer) {
        bytes.withLock { bytes in
            let room = limit - bytes.count
            if room > 0 { bytes.append(contentsOf: chunk.prefix(room)) }
        }
    }

    /// The output as it was, lines and all.
    var rawText: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }

    var text: String {
        let raw = bytes.withLock { $0 }
        return String(decoding: raw, as: UTF8.self)
            .split(whereSeparator: \.isNewline)
            .joined(separator: " ")
            .trimmingPrefixAndSuffixWhitespace()
    }
}

extension String {
    fileprivate func trimmingPrefixAndSuffixWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

/// Sends one HTTP/1.1 request when the connection is up and reports the status code of the response's
/// status line; the rest of the response is ignored.
final class HTTPStatusLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maximumStatusLine = 8 * 1024
    private let request: String
    private let status: EventLoopPromise<Int>
    private var received = ByteBuffer()

    init(request: String, status: EventLoopPromise<Int>) {
        self.request = request
        self.status = status
    }

    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(string: request)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        let view = received.readableBytesView
        guard let end = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > Self.maximumStatusLine {
                fail(context: context, "no HTTP status line in the first \(Self.maximumStatusLine) bytes")
            }
            return
        }
        let line = String(decoding: view[view.startIndex..<end], as: UTF8.self)
        // "HTTP/1.1 200 OK"
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3, let code = Int(parts[1]) else {
            fail(context: context, "malformed HTTP status line '\(line.trimmingPrefixAndSuffixWhitespace())'")
            return
        }
        status.succeed(code)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(HTTPProbeError(message: "connection closed before an HTTP response arrived"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError {
            status.fail(HTTPProbeError(message: errnoText(error.errnoCode)))
        } else {
            status.fail(HTTPProbeError(message: "\(error)"))
        }
        context.close(promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        status.fail(HTTPProbeError(message: message))
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPStatusLineHandler: Sendable {}
