import ArgumentParser
import Foundation

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

    /// Parses and runs the command as argument-parser does, except that an error is one `error: ...` line on
    /// stderr: a bad argument or flag — a parse error or a `ValidationError`, from `validate()` or `run()` —
    /// names the command's help instead of printing the whole usage. Help and `ExitCode` exits are unchanged.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let text = message(for: error)
            guard !code.isSuccess, !(error is ExitCode), !text.isEmpty else { exit(withError: error) }
            let usage = code == .validationFailure ? invokedCommand(CommandLine.arguments.dropFirst()) : nil
            printError(errorLine(text, help: usage))
            Foundation.exit(code.rawValue)
        }
    }

    /// `error: MESSAGE` on one line, whatever line breaks the message has, with `(see `COMMAND --help`)`
    /// after a usage error.
    static func errorLine(_ message: String, help command: String?) -> String {
        let flat = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        return "error: \(flat)" + (command.map { " (see `\($0) --help`)" } ?? "")
    }

    /// The (sub)command the arguments name, e.g. `weft token create`: the leading arguments that are
    /// subcommand names.
    static func invokedCommand(_ arguments: some Sequence<String>) -> String {
        var names = [_commandName]
        var current: any ParsableCommand.Type = Weft.self
        for argument in arguments {
            guard let next = current.configuration.subcommands.first(where: { $0._commandName == argument }) else { break }
            names.append(argument)
            current = next
        }
        return names.joined(separator: " ")
    }
}
