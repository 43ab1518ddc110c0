import ArgumentParser
import WeftClient
import WeftCore

/// `weft ca status|rotate|activate|retire`: the mesh's trust roots and their rotation.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show or rotate the roots that sign node and workload certificates.",
        discussion: """
            A rotation takes three steps; no connection is dropped at any of them. `rotate`: a new root \
            joins the trust bundle (nodes trust it within seconds; it signs nothing yet). `activate`: the \
            new root signs from now on, and every node renews its own and its workloads' certificates at \
            once. `retire`: the old root leaves the bundle and its key is deleted. Wait between steps \
            until `weft ca status` shows every node caught up (a few seconds). The API's own serving \
            certificate and admin.yaml keep using the cluster CA.
            """,
        subcommands: [Status.self, Rotate.self, Activate.self, Retire.self],
        defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the trust roots.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await reportingErrors {
                try await client.withClient { api in print(CACommand.table(try await api.trustBundle()), terminator: "") }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Step 1: add a new root to the trust bundle.")
        @OptionGroup var client: ClientOptions
        func run() async throws { try await CACommand.step("rotate", client) }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Step 2: sign with the new root from now on.")
        @OptionGroup var client: ClientOptions
        func run() async throws { try await CACommand.step("activate", client) }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Step 3: remove the old roots from the trust bundle.")
        @OptionGroup var client: ClientOptions
        func run() async throws { try await CACommand.step("retire", client) }
    }

    static func step(_ name: String, _ client: ClientOptions) async throws {
        try await reportingErrors {
            try await client.withClient { api in print(table(try await api.rotateTrust(name)), terminator: "") }
        }
    }

    static func table(_ status: TrustBundleStatus) -> String {
        let rows = status.roots.map { [$0.id, $0.state, String($0.fingerprint.prefix(16)), $0.notAfter] }
        return Table(headers: ["ROOT", "STATE", "FINGERPRINT", "EXPIRES"], rows: rows).render()
    }
}
