import ArgumentParser
import Foundation
import WeftClient
import WeftCore

/// `weft get KIND [NAME]`: list objects or show one, as a table, JSON or YAML; `-w` follows changes.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show objects: deployments, services, replicas, nodes, endpoints, authorization policies, peer authentications, config maps or secrets.",
        discussion: "JSON and YAML output add flat fields at each object's top level (name, namespace; for replicas also deployment, node, phase, ready, address, restarts)."
    )

    @Argument(help: "deployments (deploy), services (svc), replicas (rep), nodes (no), endpoints (ep), authorizationpolicies (authz), peerauthentications (peerauth), configmaps (cm) or secrets.")
    var kind: String

    @Argument(help: "Show only this object.")
    var name: String?

    @OptionGroup var namespace: NamespaceOption

    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "List across all namespaces.")
    var allNamespaces = false

    @Option(name: [.short, .customLong("output")], help: "table, json or yaml.")
    var output: OutputFormat = .table

    @Flag(name: [.short, .customLong("watch")], help: "After the listing, print a line per change (with -o json: one {\"type\", \"object\"} line per event).")
    var watch = false

    @Flag(name: .customLong("show-secrets"), help: "Print the values of Secrets with -o json or -o yaml (base64, as stored); without it they read <redacted>.")
    var showSecrets = false

    @OptionGroup var client: ClientOptions

    /// A Secret's values only when asked for with --show-secrets.
    private func shown(_ kind: ResourceKind, _ object: JSONValue) -> JSONValue {
        showSecrets ? object : ResourceView.redacted(kind, object)
    }

    func validate() throws {
        if allNamespaces && namespace.namespace != nil { throw ValidationError("-n/--namespace and -A/--all-namespaces exclude each other; give one of them") }
    }

    func run() async throws {
        try await reportingErrors {
            let kind = try parseKind(kind)
            let all = allNamespaces && kind.isNamespaced
            let scope: String? = kind.isNamespaced ? (all ? nil : namespace.resolved) : nil
            try await client.withClient { api in
                var items: [JSONValue]
                let resourceVersion: String
                if let name {
                    let object = shown(kind, try await api.get(kind, namespace: scope ?? namespace.resolved, name: name))
                    items = [object]
                    // Later changes of this object have larger revisions than its own.
                    resourceVersion = object["metadata"]?["resourceVersion"]?.stringValue ?? ""
                    if !watch {
                        try ObjectPrinter.printObject(kind, object, format: output, allNamespaces: all,
                                                      nodeUsage: try await nodeUsage(api, kind: kind, items: [object]))
                        return
                    }
                } else {
                    let list = try await api.list(kind, namespace: scope)
                    items = Self.sorted(list.items, allNamespaces: all).map { shown(kind, $0) }
                    resourceVersion = list.resourceVersion
                    if !watch {
                        try ObjectPrinter.printList(kind, items, format: output, allNamespaces: all,
                                                    nodeUsage: try await nodeUsage(api, kind: kind, items: items))
                        return
                    }
                }
                try await follow(api, kind: kind, scope: scope, allNamespaces: all, initial: items, from: resourceVersion)
            }
        }
    }

    /// Prints the current objects, then one line (or document) per change until interrupted.
    private func follow(_ api: APIClient, kind: ResourceKind, scope: String?, allNamespaces: Bool,
                        initial: [JSONValue], from resourceVersion: String) async throws {
        var widths: [Int] = []
        switch output {
        case .table:
            let table = ResourceView.table(kind, initial, allNamespaces: allNamespaces, nodeUsage: try await nodeUsage(api, kind: kind, items: initial))
            widths = table.widths
            print(table.render(), terminator: "")
        case .json:
            for object in initial {
                print(OutputText.compactJSON(.object(["type": .string("ADDED"), "object": ResourceView.flattened(kind, object)])), terminator: "")
            }
        case .yaml:
            for object in initial { print("---\n" + (try OutputText.yaml(ResourceView.flattened(kind, object))), terminator: "") }
        }
        fflush(nil)
        for try await var event in api.watch(kind, namespace: scope, resourceVersion: resourceVersion) {
            guard event.type != "BOOKMARK" else { continue }
            event.object = shown(kind, event.object)
            if let name, event.object["metadata"]?["name"]?.stringValue != name { continue }
            switch output {
            case .table:
                let row = ResourceView.row(kind, event.object, allNamespaces: allNamespaces,
                                           nodeUsage: try await nodeUsage(api, kind: kind, items: [event.object]))
                // Columns only widen, so later lines stay aligned with earlier ones.
                widths = widths.indices.map { max(widths[$0], $0 < row.count ? row[$0].count : 0) }
                var line = Table.line(row, widths: widths)
                if event.type == "DELETED" { line += "   (deleted)" }
                print(line)
            case .json:
                print(OutputText.compactJSON(.object(["type": .string(event.type), "object": ResourceView.flattened(kind, event.object)])), terminator: "")
            case .yaml:
                print("--- # \(event.type)\n" + (try OutputText.yaml(ResourceView.flattened(kind, event.object))), terminator: "")
            }
            fflush(nil)
        }
    }

    /// For node tables: what the replicas bound to each of `items` take (one list of every replica).
    private func nodeUsage(_ api: APIClient, kind: ResourceKind, items: [JSONValue]) async throws -> [String: NodeUsage] {
        guard kind == .node, output == .table, !items.isEmpty else { return [:] }
        let replicas = try await api.list(Replica.self, namespace: nil).items
        return NodeUsage.of(nodes: items.compactMap { ResourceView.decode(Node.self, $0) }, replicas: replicas)
    }

    /// By namespace (with -A), then name, as kubectl lists.
    static func sorted(_ items: [JSONValue], allNamespaces: Bool) -> [JSONValue] {
        items.sorted { a, b in
            let an = a["metadata"]?["namespace"]?.stringValue ?? "", bn = b["metadata"]?["namespace"]?.stringValue ?? ""
            if allNamespaces && an != bn { return an < bn }
            return (a["metadata"]?["name"]?.stringValue ?? "") < (b["metadata"]?["name"]?.stringValue ?? "")
        }
    }
}
