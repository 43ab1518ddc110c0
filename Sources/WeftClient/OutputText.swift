import Foundation
import WeftCore
import Yams

/// JSON and YAML renderings of API objects for `-o json` and `-o yaml`.
public enum OutputText {
    /// Indented JSON with sorted keys, ending in a newline.
    public static func json(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// One line of compact JSON with sorted keys, ending in a newline.
    public static func compactJSON(_ value: JSONValue) -> String {
        guard let data = try? value.serialized() else { return "null\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// YAML with sorted keys (which puts apiVersion, kind, metadata, spec, status in kubectl's order);
    /// strings that would read back as another type are quoted.
    public static func yaml(_ value: JSONValue) throws -> String {
        try Yams.serialize(node: node(value), sortKeys: true)
    }

    static func node(_ value: JSONValue) -> Yams.Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .int(let i): return Node(String(i), Tag(.int))
        case .double(let d): return Node(d.description, Tag(.float))
        case .string(let s): return (try? s.represented()) ?? Node(s, Tag(.str), .doubleQuoted)
        case .array(let elements): return Node(elements.map(node))
        case .object(let members): return Node(members.sorted { $0.key < $1.key }.map { ((try? $0.key.represented()) ?? Node($0.key), node($0.value)) })
        }
    }
}
