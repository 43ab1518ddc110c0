import ArgumentParser
import Foundation
import WeftClient
import WeftCore

/// `weft token create|list|revoke`: join tokens for `weft agent` (admin credentials).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage join tokens, with which agents join the cluster.",
        discussion: """
            A join token is weft1.<id>.<secret>.<ca-hash>: <id> names it, <secret> authenticates the join \
            (the server keeps only its SHA-256), <ca-hash> is the SHA-256 of the cluster CA's public key \
            (DER SubjectPublicKeyInfo), which the agent checks before it sends anything. A token can be used \
            by any number of nodes until it expires or is revoked.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a join token and print it, with the weft agent command line that uses it.",
            discussion: "The first line of the output is the token alone; it is shown only this once.")

        @Option(help: ArgumentHelp("How long the token works: e.g. 30m, 24h, 7d (from 1m to 366d).", valueName: "duration"))
        var ttl: String = "24h"

        @Option(name: .customLong("description"), help: ArgumentHelp("What the token is for, shown by `weft token list`.", valueName: "text"))
        var tokenDescription: String?

        @OptionGroup var client: ClientOptions

        func validate() throws {
            _ = try TokenTTL.seconds(ttl)
        }

        func run() async throws {
            let seconds = try TokenTTL.seconds(ttl)
            try await client.withClient { api in
                let created = try await api.createJoinToken(ttlSeconds: seconds, description: tokenDescription)
                guard let token = created.token else { throw ClientError("the API server answered without the token") }
                print(token)
                print("")
                print("Expires \(created.expires). Join a node with:")
                print("  weft agent --server \(api.config.server) --token \(token)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List join tokens (never their secrets).")

        @Option(name: [.short, .customLong("output")], help: "table, json or yaml.")
        var output: OutputFormat = .table

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await client.withClient { api in
                let tokens = try await api.listJoinTokens()
                switch output {
                case .json, .yaml:
                    struct Items: Encodable { var items: [JoinTokenInfo] }
                    let value = try JSONValue.parse(JSONEncoder().encode(Items(items: tokens)))
                    print(output == .json ? OutputText.json(value) : try OutputText.yaml(value), terminator: "")
                case .table:
                    if tokens.isEmpty {
                        printError("No join tokens.")
                        return
                    }
                    let now = Date()
                    let rows = tokens.map { token in
                        [token.id, TokenTTL.expiresText(token.expires, now: now), token.usedBy.isEmpty ? "<none>" : token.usedBy.joined(separator: ","),
                         token.description ?? ""]
                    }
                    print(Table(headers: ["ID", "EXPIRES", "USED-BY", "DESCRIPTION"], rows: rows).render(), terminator: "")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a join token: it joins no more nodes. Nodes that joined with it stay; `weft delete node NAME` removes one and its credential.")

        @Argument(help: "The token's id (the part after weft1., or from `weft token list`).")
        var id: String

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await client.withClient { api in
                let revoked = try await api.revokeJoinToken(id: id)
                print("token \"\(revoked.id)\" revoked")
            }
        }
    }
}

/// Token lifetimes as the CLI writes them.
enum TokenTTL {
    /// `90s`, `30m`, `24h`, `7d` (or plain seconds) → seconds, 1 minute to 366 days.
    static func seconds(_ text: String) throws -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var factor = 1
        if let last = text.last, let unit = units[last] {
            number = number.dropLast()
            factor = unit
        }
        guard let value = Int(number), value > 0, value <= 366 * 86_400 / factor else {
            throw ValidationError("--ttl: \"\(text)\" is not a duration such as 30m, 24h or 7d")
        }
        let seconds = value * factor
        guard (60...(366 * 86_400)).contains(seconds) else {
            throw ValidationError("--ttl: \(text) is outside 1m to 366d")
        }
        return seconds
    }

    /// `2026-01-02T03:04:05Z (in 23h)` or `... (expired)`.
    static func expiresText(_ timestamp: String, now: Date) -> String {
        guard let date = Age.parse(timestamp) else { return timestamp }
        let left = Int(date.timeIntervalSince(now))
        return left <= 0 ? "\(timestamp) (expired)" : "\(timestamp) (in \(Age.format(seconds: left)))"
    }
}
