import ArgumentParser
import WeftClient
import WeftCore

/// `weft scale deployment NAME --replicas N`.
struct ScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Set a deployment's number of replicas.")

    @Argument(help: "deployment (the only kind that scales).")
    var kind: String

    @Argument(help: "The deployment's name.")
    var name: String

    @Option(help: "The desired number of replicas.")
    var replicas: Int

    @OptionGroup var namespace: NamespaceOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if replicas < 0 { throw ValidationError("--replicas: \(replicas) is negative; give 0 or more (0 stops every replica)") }
    }

    func run() async throws {
        try await reportingErrors {
            guard try parseKind(kind) == .deployment else { throw ClientError("only deployments can be scaled") }
            try await client.withClient { api in
                try await api.scale(namespace: namespace.resolved, deployment: name, replicas: replicas)
                print("deployment \"\(name)\" scaled to \(replicas)")
            }
        }
    }
}
