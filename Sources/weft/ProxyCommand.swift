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

            With --mesh-certificate, --mesh-key and --mesh-bundle (an SVID of a node, e.g. one made by \
            `weft server` under agent/identity), backends with `tunnel:` are reached through that node's \
            mTLS tunnel; with --inbound the proxy also serves a tunnel port itself, forwarding streams to \
            the endpoints given with --inbound-allow and refusing any other destination. Connections from \
            local clients carry no workload identity in this mode.
            """)

    @Option(name: .long, help: "The proxy configuration file (YAML or JSON).")
    var config: String

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    @Option(name: .long, help: "PEM certificate (chain) of this node's SVID, for the mTLS tunnel.")
    var meshCertificate: String?

    @Option(name: .long, help: "PEM private key of that SVID.")
    var meshKey: String?

    @Option(name: .long, help: "PEM trust roots that peers' SVIDs must chain to.")
    var meshBundle: String?

    @Option(name: .long, help: "Serve an inbound tunnel port at HOST:PORT (needs the --mesh-* files).")
    var inbound: String?

    @Option(name: .long, help: ArgumentHelp("A local endpoint IP:PORT that inbound streams may reach (repeatable).", valueName: "endpoint"))
    var inboundAllow: [String] = []

    @OptionGroup var log: LogOptions

    func run() async throws {
        try log.bootstrap()
        let logger = Logger(label: "weft.proxy")
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        let tls = try meshTLS()

        let configuration: ProxyConfiguration
        switch Self.load(config) {
        case .success(let loaded): configuration = loaded
        case .failure(let problems):
            Self.printErrors(problems.lines)
            throw ExitCode.failure
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        let proxy = NodeProxy(group: group, logger: logger, mesh: tls.map {
            MeshRouting(tunnels: TunnelClient(tls: $0, logger: logger), sourceIdentity: { _, _ in nil })
        })
        var tunnel: TunnelInbound?
        do {
            try await proxy.apply(configuration)
            if let inbound, let tls {
                let (host, port) = try ListenAddress.parse(inbound, option: "--inbound")
                let allowed = Set(inboundAllow)
                tunnel = try await TunnelInbound.start(host: host, port: port, group: group, tls: tls, authorize: { request in
                    allowed.contains(request.destination) ? .allow : .unknownDestination("\(request.destination) is not given with --inbound-allow")
                }, logger: logger)
            }
        } catch {
            Self.printErrors("\(error)".split(separator: "\n").map { "\(config): \($0)" })
            await proxy.shutdown()
            try? await group.shutdownGracefully()
            throw ExitCode.failure
        }
        let addresses = proxy.boundAddresses()
        var listening = configuration.listeners.map { listener in
            "\(listener.name)=\(addresses[listener.endpoint].map(Self.text) ?? listener.endpoint)"
        }
        if let address = tunnel?.localAddress { listening.append("inbound=\(Self.text(address))") }
        // Unbuffered, so a supervisor reading a pipe sees it at once.
        FileHandle.standardOutput.write(Data((["ready"] + listening).joined(separator: " ").appending("\n").utf8))

        let service = ProxyService(proxy: proxy, path: config, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            await tunnel?.shutdown()
            await proxy.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        await tunnel?.shutdown()
        try? await group.shutdownGracefully()
    }

    /// The mesh credentials from the --mesh-* files, or nil when none are given.
    private func meshTLS() throws -> MeshTLS? {
        let files = [meshCertificate, meshKey, meshBundle]
        guard files.contains(where: { $0 != nil }) else {
            if inbound != nil { throw ValidationError("--inbound needs --mesh-certificate, --mesh-key and --mesh-bundle") }
            return nil
        }
        guard let meshCertificate, let meshKey, let meshBundle else {
            throw ValidationError("--mesh-certificate, --mesh-key and --mesh-bundle go together")
        }
        func read(_ path: String, _ option: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ValidationError("\(option): cannot read \(path): \((error as NSError).localizedDescription)")
            }
        }
        let bundle = try read(meshBundle, "--mesh-bundle")
        let roots = bundle.components(separatedBy: "-----END CERTIFICATE-----")
            .filter { $0.contains("-----BEGIN CERTIFICATE-----") }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) + "\n-----END CERTIFICATE-----\n" }
        let tls = MeshTLS()
        do {
            try tls.update(MeshCredentials(certificateChainPEM: try read(meshCertificate, "--mesh-certificate"),
                                           privateKeyPEM: try read(meshKey, "--mesh-key"), trustBundlePEM: roots))
        } catch {
            throw ValidationError("--mesh-certificate/--mesh-key/--mesh-bundle: \(error)")
        }
        for endpoint in inboundAllow where !endpoint.contains(":") {
            throw ValidationError("--inbound-allow: \"\(endpoint)\" is not IP:PORT")
        }
        return tls
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
