import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import WeftClient
import WeftCore
import WeftProxy

/// `weft proxy --config FILE`: the node proxy on its own, configured from a file.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the node proxy standalone from a configuration file.",
        discussion: """
            FILE is YAML or JSON with the shape documented in proxy-config/README.md. Every problem in it is \
            printed as `FILE: field.path: message` and nothing starts. Once every listener listens, the proxy \
            prints one line: `ready NAME=ADDRESS:PORT ...`. SIGHUP re-reads FILE and applies it (an invalid file \
            is reported and the running configuration kept); SIGTERM or SIGINT stop it.
            """)

    @Option(name: .long, help: "The proxy configuration file (YAML or JSON).")
    var config: String

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    @OptionGroup var log: LogOptions

    func run() async throws {
        try log.bootstrap()
        let logger = Logger(label: "weft.proxy")
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }

        let configuration: ProxyConfiguration
        switch Self.load(config) {
        case .success(let loaded): configuration = loaded
        case .failure(let problems):
            Self.printErrors(problems.lines)
            throw ExitCode.failure
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let proxy = NodeProxy(group: group, logger: logger)
        do {
            try await proxy.apply(configuration)
        } catch {
            Self.printErrors("\(error)".split(separator: "\n").map { "\(config): \($0)" })
            await proxy.shutdown()
            try? await group.shutdownGracefully()
            throw ExitCode.failure
        }
        let addresses = proxy.boundAddresses()
        let listening = configuration.listeners.map { listener in
            "\(listener.name)=\(addresses[listener.endpoint].map(Self.text) ?? listener.endpoint)"
        }
        // Unbuffered, so a supervisor reading a pipe sees it at once.
        FileHandle.standardOutput.write(Data((["ready"] + listening).joined(separator: " ").appending("\n").utf8))

        let service = ProxyService(proxy: proxy, path: config, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            await proxy.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    /// One problem per line, every line naming the file.
    struct Problems: Error {
        var lines: [String]
    }

    /// Reads, parses, decodes and validates `path`; every problem as `path: ...`.
    static func load(_ path: String) -> Result<ProxyConfiguration, Problems> {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return .failure(Problems(lines: ["\(path): cannot read the file: \((error as NSError).localizedDescription)"]))
        }
        let documents: [JSONValue]
        do {
            documents = try YAMLText.documents(text).compactMap { $0 }
        } catch {
            return .failure(Problems(lines: ["\(path):\(error.line.map { "\($0):" } ?? "") \(error.message)"]))
        }
        guard documents.count == 1 else {
            return .failure(Problems(lines: ["\(path): expected one document with `listeners:`, found \(documents.count)"]))
        }
        do {
            return .success(try ProxyConfiguration.decode(documents[0]))
        } catch {
            return .failure(Problems(lines: error.problems.map { "\(path): \($0)" }))
        }
    }

    static func printErrors(_ lines: [String]) {
        FileHandle.standardError.write(Data(lines.map { "error: \($0)\n" }.joined().utf8))
    }

    static func text(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// Keeps the proxy running until graceful shutdown; SIGHUP reloads the configuration file.
struct ProxyService: ServiceLifecycle.Service {
    let proxy: NodeProxy
    let path: String
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in hangups {
                    await reload()
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await proxy.shutdown()
    }

    private func reload() async {
        switch ProxyCommand.load(path) {
        case .failure(let problems):
            ProxyCommand.printErrors(problems.lines)
            logger.error("reload refused; the running configuration is kept", metadata: ["file": "\(path)"])
        case .success(let configuration):
            do {
                try await proxy.apply(configuration)
                logger.info("reloaded", metadata: ["file": "\(path)", "listeners": "\(configuration.listeners.count)"])
            } catch {
                ProxyCommand.printErrors("\(error)".split(separator: "\n").map { "\(path): \($0)" })
                logger.error("reload failed; the running configuration is kept", metadata: ["file": "\(path)"])
            }
        }
    }
}
