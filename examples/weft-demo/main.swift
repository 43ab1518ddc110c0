#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// The variables `DemoConfiguration.parse` reads; looked up one by one so that no global `environ` is touched.
let demoEnvironmentVariables = [
    "PORT", "BIND", "VERSION", "FAIL_RATE", "DELAY_MS", "UPSTREAM",
    "SERVICE_NAME", "WEFT_DEPLOYMENT", "WEFT_REPLICA_NAME", "WEFT_REPLICA_IP",
    "WEFT_DNS", "WEFT_CLUSTER_DOMAIN", "WEFT_NAMESPACE",
]

func writeLine(_ line: String, toDescriptor descriptor: Int32) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += written
    }
}

func currentHostname() -> String? {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs until SIGTERM or SIGINT has drained the listener; returns the exit status.
func runDemo() -> Int32 {
    var environment: [String: String] = [:]
    for name in demoEnvironmentVariables {
        if let value = getenv(name) {
            environment[name] = String(cString: value)
        }
    }
    let configuration: DemoConfiguration
    do {
        configuration = try DemoConfiguration.parse(environment: environment, hostname: currentHostname())
    } catch {
        writeLine(error.description, toDescriptor: 2)
        return 2
    }

    // Block SIGTERM and SIGINT before any thread exists, so every thread inherits the mask and the
    // signals stay pending until `sigwait` below takes them, even one that arrives during start-up.
    var shutdownSignals = sigset_t()
    sigemptyset(&shutdownSignals)
    sigaddset(&shutdownSignals, SIGTERM)
    sigaddset(&shutdownSignals, SIGINT)
    pthread_sigmask(SIG_BLOCK, &shutdownSignals, nil)
    signal(SIGPIPE, SIG_IGN)

    let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let server: DemoServer
    do {
        server = try DemoServer.start(configuration: configuration, group: group).wait()
    } catch {
        writeLine(
            "weft-demo: cannot listen on \(IPLiteral.hostPort(configuration.bindHost, port: configuration.port)): \(error)",
            toDescriptor: 2
        )
        try? group.syncShutdownGracefully()
        return 1
    }

    writeLine("weft-demo listening on \(server.listeningAddress)", toDescriptor: 1)

    var received: Int32 = 0
    while sigwait(&shutdownSignals, &received) != 0 {}
    // Further signals stay blocked and pending: the drain's grace period bounds the shutdown anyway.
    server.drain()
    try? server.drained.wait()
    try? group.syncShutdownGracefully()
    return 0
}

exit(runDemo())
