import ArgumentParser
import WeftClient
import WeftCore

/// `weft apply -f FILE|DIR`: create or update every object in the manifests, all or nothing.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Create or update the objects in manifest files.",
        discussion: "All documents are validated first; if any is invalid, nothing is stored."
    )

    @Option(name: [.short, .customLong("filename")], help: ArgumentHelp("A manifest file, or a directory of *.yaml, *.yml and *.json files (repeatable).", valueName: "path"))
    var filenames: [String] = []

    @OptionGroup var namespace: NamespaceOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if filenames.isEmpty { throw ValidationError("give the manifests with -f FILE or -f DIR") }
    }

    func run() async throws {
        try await reportingErrors {
            let documents = try filenames.flatMap { try ManifestFiles.load(path: $0) }
            guard !documents.isEmpty else { throw ClientError("\(filenames.joined(separator: ", ")): no documents to apply") }
            try await client.withClient { api in
                let outcomes: [ApplyOutcome]
                do {
                    outcomes = try await api.apply(documents.map(\.value), namespace: namespace.namespace)
                } catch let error as APIError where error.status == 422 && !error.details.isEmpty {
                    for line in Self.invalidLines(error, documents: documents) { printError(line) }
                    printError("error: " + (error.message.contains("nothing") ? error.message : "\(error.message); nothing was applied"))
                    throw ExitCode.failure
                }
                for outcome in outcomes {
                    print("\(outcome.kind.lowercased())/\(outcome.name) \(outcome.action)")
                }
            }
        }
    }

    /// `FILE: document N (Kind/name): path: message` for each invalid field; N counts from 1 within the file.
    static func invalidLines(_ error: APIError, documents: [SourcedDocument]) -> [String] {
        error.details.map { detail in
            let field = (detail.path.isEmpty ? "" : "\(detail.path): ") + detail.message
            guard let index = detail.document, documents.indices.contains(index) else {
                return (detail.object.map { "\($0): " } ?? "") + field
            }
            let document = documents[index]
            let object = (detail.object ?? document.objectLabel).map { " (\($0))" } ?? ""
            return "\(document.file): document \(document.index + 1)\(object): \(field)"
        }
    }
}
