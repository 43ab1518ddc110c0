import ArgumentParser
import Foundation
import WeftClient
import WeftCore

/// Options every client command takes: which cluster to talk to.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Client config file (default: $WEFT_CONFIG, else ~/.weft/admin.yaml).", valueName: "file"))
    var config: String?

    /// Runs `body` with a connected client, shuts the client down, and turns any failure into one
    /// `error: ...` line on stderr and a non-zero exit.
    func withClient(_ body: (APIClient) async throws -> Void) async throws {
        try await reportingErrors {
            let path = ClientConfig.defaultPath(explicit: config, environment: ProcessInfo.processInfo.environment)
            let client = try APIClient(config: try ClientConfig.load(path: path))
            do {
                try await body(client)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try? await client.shutdown()
        }
    }
}

/// The `-n/--namespace` option.
struct NamespaceOption: ParsableArguments {
    @Option(name: [.short, .customLong("namespace")], help: ArgumentHelp("Namespace (default: \(defaultNamespace)).", valueName: "namespace"))
    var namespace: String?

    var resolved: String { namespace ?? defaultNamespace }
}

/// Runs `body`; failures other than `ExitCode` print as `error: ...` on stderr and exit with status 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("error: \(userMessage(error))")
        throw ExitCode.failure
    }
}

/// One line a user can act on, without type names or stack traces.
func userMessage(_ error: any Error) -> String {
    switch error {
    case let error as APIError:
        let details = error.details.map { ($0.object.map { "\($0): " } ?? "") + ($0.path.isEmpty ? "" : "\($0.path): ") + $0.message }
        return details.isEmpty ? error.message : "\(error.message): \(details.joined(separator: "; "))"
    case let error as ClientError:
        return error.message
    case is CancellationError:
        return "interrupted"
    case let error as ValidationError:
        return error.message
    default:
        return String(describing: error)
    }
}

/// Writes a line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// The kind named on the command line (`deployments`, `deploy`, `Deployment`, ...).
func parseKind(_ name: String) throws -> ResourceKind {
    guard let kind = ResourceKind(name: name) else {
        let known = ResourceKind.allCases.map { $0.aliases.joined(separator: "/") }.joined(separator: ", ")
        throw ClientError("unknown resource type \"\(name)\"; use one of \(known)")
    }
    return kind
}
