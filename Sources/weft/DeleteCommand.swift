import ArgumentParser
import WeftClient
import WeftCore

/// `weft delete KIND NAME` or `weft delete -f FILE|DIR`.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete an object, or every object in manifest files.",
        discussion: "Replicas stop gracefully; a deployment's replica is replaced by its controller."
    )

    @Argument(help: "The kind of object, e.g. deployment, service, replica.")
    var kind: String?

    @Argument(help: "The object's name.")
    var name: String?

    @Option(name: [.short, .customLong("filename")], help: ArgumentHelp("Delete the objects in this manifest file or directory (repeatable).", valueName: "path"))
    var filenames: [String] = []

    @OptionGroup var namespace: NamespaceOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if filenames.isEmpty {
            guard kind != nil, name != nil else { throw ValidationError("give KIND NAME, e.g. `weft delete deployment cart`, or -f FILE") }
        } else if kind != nil {
            throw ValidationError("give either KIND NAME or -f FILE, not both")
        }
    }

    func run() async throws {
        try await reportingErrors {
            if filenames.isEmpty, let kind, let name {
                let kind = try parseKind(kind)
                try await client.withClient { api in
                    try await api.delete(kind, namespace: kind.isNamespaced ? namespace.resolved : nil, name: name)
                    print("\(kind.rawValue.lowercased()) \"\(name)\" deleted")
                }
            } else {
                try await deleteFiles()
            }
        }
    }

    /// Deletes each object named in the files; a missing or failing one is reported and the rest go on.
    private func deleteFiles() async throws {
        let documents = try filenames.flatMap { try ManifestFiles.load(path: $0) }
        var failed = false
        try await client.withClient { api in
            for document in documents {
                let place = "\(document.file): document \(document.index + 1)"
                guard let kindName = document.value["kind"]?.stringValue, let kind = ResourceKind(name: kindName),
                      let name = document.value["metadata"]?["name"]?.stringValue else {
                    printError("error: \(place): needs kind and metadata.name")
                    failed = true
                    continue
                }
                let objectNamespace = kind.isNamespaced ? (document.value["metadata"]?["namespace"]?.stringValue ?? namespace.resolved) : nil
                do {
                    try await api.delete(kind, namespace: objectNamespace, name: name)
                    print("\(kind.rawValue.lowercased()) \"\(name)\" deleted")
                } catch let error as APIError where error.status == 404 {
                    printError("error: \(kind.rawValue.lowercased()) \"\(name)\" not found" + (objectNamespace.map { " in namespace \"\($0)\"" } ?? ""))
                    failed = true
                } catch let error as APIError {
                    printError("error: \(kind.rawValue.lowercased()) \"\(name)\": \(userMessage(error))")
                    failed = true
                }
            }
        }
        if failed { throw ExitCode.failure }
    }
}
