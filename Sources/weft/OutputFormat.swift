import ArgumentParser
import WeftClient
import WeftCore

/// `-o table|json|yaml`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
    case yaml
}

/// Prints a list or one object in the chosen format; JSON and YAML carry the flat convenience fields.
enum ObjectPrinter {
    static func printList(_ kind: ResourceKind, _ items: [JSONValue], format: OutputFormat, allNamespaces: Bool,
                          nodeUsage: [String: NodeUsage] = [:]) throws {
        switch format {
        case .table:
            if items.isEmpty {
                printError(allNamespaces || !kind.isNamespaced ? "No \(kind.plural) found." : "No \(kind.plural) found in this namespace.")
            } else {
                print(ResourceView.table(kind, items, allNamespaces: allNamespaces, nodeUsage: nodeUsage).render(), terminator: "")
            }
        case .json:
            print(OutputText.json(.object(["items": .array(items.map { ResourceView.flattened(kind, $0) })])), terminator: "")
        case .yaml:
            print(try OutputText.yaml(.object(["items": .array(items.map { ResourceView.flattened(kind, $0) })])), terminator: "")
        }
    }

    static func printObject(_ kind: ResourceKind, _ object: JSONValue, format: OutputFormat, allNamespaces: Bool,
                            nodeUsage: [String: NodeUsage] = [:]) throws {
        switch format {
        case .table:
            print(ResourceView.table(kind, [object], allNamespaces: allNamespaces, nodeUsage: nodeUsage).render(), terminator: "")
        case .json:
            print(OutputText.json(ResourceView.flattened(kind, object)), terminator: "")
        case .yaml:
            print(try OutputText.yaml(ResourceView.flattened(kind, object)), terminator: "")
        }
    }
}
