import NIOCore
import NIOPosix
import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 responder for probe tests: `/ok` → 200, `/redirect` → 302, `/fail` → 500,
/// `/hang` → never answers.
private final class CannedHTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var request = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        request += String(buffer: unwrapInboundIn(data))
        guard request.contains("\r\n\r\n") else { return }
        let target = request.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        let status: String
        switch target {
        case "/ok": status = "200 OK"
        case "/redirect": status = "302 Found"
        case "/fail": status = "500 Internal Server Error"
        default: return
        }
        let response = "HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension CannedHTTPResponder: Sendable {}

/// Runs `body` with the port of an HTTP responder on 127.0.0.1, closing the listener afterwards.
private func withHTTPServer<R>(_ body: (Int) async throws -> R) async throws -> R {
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CannedHTTPResponder())
            }
        }
        .bind(host: "127.0.0.1", port: 0)
        .get()
    let port = try #require(server.localAddress?.port)
    do {
        let result = try await body(port)
        try? await server.close()
        return result
    } catch {
        try? await server.close()
        throw error
    }
}

/// A port on 127.0.0.1 that was just bound and released, so nothing listens there.
private func closedPort() throws -> Int {
    let allocator = PortAllocator()
    return try allocator.allocate()
}

@Suite("Probes")
struct ProbeTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test func httpGetSucceedsOn2xxAnd3xx() async throws {
        try await withHTTPServer { port in
            let ok = await ProbeAction.httpGet(host: "127.0.0.1", port: port, path: "/ok", timeout: .seconds(5)).run(on: group)
            #expect(ok == .success)
            let redirect = await ProbeAction.httpGet(host: "127.0.0.1", port: port, path: "redirect", timeout: .seconds(5)).run(on: group)
            #expect(redirect == .success)
        }
    }

    @Test func httpGetFailsOn500WithTheStatusCode() async throws {
        try await withHTTPServer { port in
            let result = await ProbeAction.httpGet(host: "127.0.0.1", port: port, path: "/fail", timeout: .seconds(5)).run(on: group)
            guard case .failure(let reason) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(reason.contains("HTTP probe failed with statuscode 500"))
        }
    }

    @Test func httpGetTimesOutWhenNoResponseComes() async throws {
        try await withHTTPServer { port in
            let result = await ProbeAction.httpGet(host: "127.0.0.1", port: port, path: "/hang", timeout: .milliseconds(200)).run(on: group)
            guard case .failure(let reason) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(reason.contains("timed out after 200ms"))
        }
    }

    @Test func httpGetReportsARefusedConnection() async throws {
        let port = try closedPort()
        let result = await ProbeAction.httpGet(host: "127.0.0.1", port: port, path: "/", timeout: .seconds(5)).run(on: group)
        #expect(result == .failure(reason: "connect to 127.0.0.1:\(port) refused"))
    }

    @Test func tcpConnectSucceedsAgainstAListener() async throws {
        try await withHTTPServer { port in
            let result = await ProbeAction.tcpConnect(host: "127.0.0.1", port: port, timeout: .seconds(5)).run(on: group)
            #expect(result == .success)
        }
    }

    @Test func tcpConnectReportsARefusedConnection() async throws {
        let port = try closedPort()
        let result = await ProbeAction.tcpConnect(host: "127.0.0.1", port: port, timeout: .seconds(5)).run(on: group)
        #expect(result == .failure(reason: "connect to 127.0.0.1:\(port) refused"))
    }

    private let environment = ["PATH": "/usr/bin:/bin"]

    @Test func execSucceedsOnExitZero() async {
        let result = await ProbeAction.exec(command: ["true"], environment: environment, timeout: .seconds(5)).run(on: group)
        #expect(result == .success)
    }

    @Test func execFailsOnNonZeroExitWithItsOutput() async {
        let command = ["sh", "-c", "echo not ready; exit 2"]
        let result = await ProbeAction.exec(command: command, environment: environment, timeout: .seconds(5)).run(on: group)
        guard case .failure(let reason) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(reason.contains("exited with code 2"))
        #expect(reason.contains("not ready"))
    }

    @Test func execIsKilledOnTimeout() async throws {
        try await withTemporaryDirectory { dir in
            let pidFile = dir + "/pid"
            let command = ["sh", "-c", "echo $$ > '\(pidFile)'; exec sleep 100"]
            let result = await ProbeAction.exec(command: command, environment: environment, timeout: .milliseconds(200)).run(on: group)
            guard case .failure(let reason) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(reason.contains("timed out after 200ms"))
            if let pid = Int32(contents(of: pidFile).trimmingCharacters(in: .whitespacesAndNewlines)) {
                #expect(!isAlive(pid))
            }
        }
    }

    @Test func execOfAMissingCommandNamesIt() async {
        let result = await ProbeAction.exec(command: ["weft-no-such-probe"], environment: environment, timeout: .seconds(5)).run(on: group)
        guard case .failure(let reason) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(reason.contains("weft-no-such-probe"))
    }

    @Test func durationsReadNaturally() {
        #expect(Duration.seconds(1).humanReadable == "1s")
        #expect(Duration.milliseconds(1500).humanReadable == "1.5s")
        #expect(Duration.milliseconds(250).humanReadable == "250ms")
    }
}
