import ArgumentParser
import Foundation
import WeftAgent
import WeftClient
import WeftCore
import WeftRuntime

/// `weft image import|list|rm`: the container images of this node, for replicas with `runtime: oci`.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Manage the container images of this node (runtime: oci).",
        discussion: """
            Images live in the node agent's data directory (<data-dir>/images; for the node of weft server, \
            <server data-dir>/agent). No registry is reachable from here: an image comes from a file — an OCI \
            image layout directory, a tar of one (skopeo copy ... oci-archive:FILE), or a docker save tar. \
            Every blob's sha256 is checked before the image is recorded. Import an image on every node that \
            runs it; run as the agent's user (root).
            """,
        subcommands: [Import.self, List.self, Remove.self])

    struct Location: ParsableArguments {
        @Option(help: ArgumentHelp("The node agent's data directory (weft server's node: <server data-dir>/agent).", valueName: "dir"))
        var dataDir: String = "~/.weft-agent"

        var store: ImageStore { ImageStore(directory: AgentConfiguration.imageDirectory(stateDirectory: Paths.expand(dataDir))) }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the image(s) of an OCI image layout (directory or tar) or a docker save tar.")

        @Argument(help: ArgumentHelp("The OCI image layout directory, or a tar file.", valueName: "file|dir"))
        var path: String

        @Option(help: ArgumentHelp("The name to record, NAME[:TAG] (tag latest); needed when the file names no image.", valueName: "name"))
        var name: String?

        @OptionGroup var location: Location

        func validate() throws {
            if let name, let problem = ImageReference.problem(name) { throw ValidationError("--name: \(problem)") }
        }

        func run() async throws {
            do {
                let images = try await location.store.importImages(from: Paths.expand(path), name: name.flatMap(ImageReference.init))
                for image in images {
                    print("imported \(image.name) \(image.manifestDigest) (\(image.layers.count) layer\(image.layers.count == 1 ? "" : "s"), \(ImageCommand.size(image.size)))")
                }
            } catch let error as RuntimeError {
                throw ClientError(error.message)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the node's images.", aliases: ["ls"])

        @Option(name: [.short, .customLong("output")], help: "table, json or yaml.")
        var output: OutputFormat = .table

        @OptionGroup var location: Location

        func run() async throws {
            let images: [StoredImage]
            do {
                images = try location.store.list()
            } catch let error as RuntimeError {
                throw ClientError(error.message)
            }
            switch output {
            case .table:
                let rows = images.map { [$0.name, String($0.manifestDigest.prefix(19)), "\($0.layers.count)", ImageCommand.size($0.size), $0.importedAt] }
                print(Table(headers: ["NAME", "DIGEST", "LAYERS", "SIZE", "IMPORTED"], rows: rows).render(), terminator: "")
            default:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(images), as: UTF8.self))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove images by name; their files go when no name uses them.")

        @Argument(help: ArgumentHelp("NAME[:TAG] of each image to remove.", valueName: "name"))
        var names: [String]

        @OptionGroup var location: Location

        func validate() throws {
            for name in names {
                if let problem = ImageReference.problem(name) { throw ValidationError(problem) }
            }
        }

        func run() async throws {
            for name in names.compactMap(ImageReference.init) {
                do {
                    try location.store.remove(name)
                    print("removed \(name)")
                } catch let error as RuntimeError {
                    throw ClientError(error.message)
                }
            }
        }
    }

    static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 20 ? String(format: "%.1fMi", Double(bytes) / Double(1 << 20)) : String(format: "%.1fKi", Double(bytes) / 1024)
    }
}
