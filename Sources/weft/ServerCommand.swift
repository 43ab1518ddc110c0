import ArgumentParser

/// Placeholder until the real `weft server` lands (owned by the control-plane author, who overwrites this file).
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run the control plane and a local agent")
    func run() async throws {}
}
