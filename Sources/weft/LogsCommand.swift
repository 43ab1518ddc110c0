import ArgumentParser
import Foundation
import NIOCore
import WeftClient

/// `weft logs REPLICA [-f] [--tail N]`: a replica's output as the agent captured it.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a replica's log.")

    @Argument(help: "The replica's name (see `weft get replicas`).")
    var replica: String

    @Flag(name: [.short, .customLong("follow")], help: "Keep printing new output until interrupted.")
    var follow = false

    @Option(help: "Only the last N lines.")
    var tail: Int?

    @OptionGroup var namespace: NamespaceOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let tail, tail < 0 { throw ValidationError("--tail: \(tail) is negative; give 0 or more lines, or leave it out for the whole log") }
    }

    func run() async throws {
        try await client.withClient { api in
            for try await chunk in api.logs(namespace: namespace.resolved, replica: replica, tail: tail, follow: follow) {
                FileHandle.standardOutput.write(Data(chunk.readableBytesView))
            }
        }
    }
}
