import ArgumentParser

/// The `weft` command: the control plane (`weft server`), node agents (`weft agent`) and the kubectl-style
/// client commands.
@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: a small service mesh and orchestrator.",
        subcommands: [
            ServerCommand.self,
            AgentCommand.self,
            TokenCommand.self,
            ApplyCommand.self,
            GetCommand.self,
            DescribeCommand.self,
            DeleteCommand.self,
            ScaleCommand.self,
            LogsCommand.self,
            ProxyCommand.self,
            CACommand.self,
            RolloutCommand.self,
            ImageCommand.self,
        ]
    )
}
