import Foundation
import WeftCore
import Yams

/// One manifest document and where it came from, to point at it in error messages.
public struct SourcedDocument: Sendable, Equatable {
    /// The file as given or found in the directory.
    public var file: String
    /// 0-based position of the document within its file.
    public var index: Int
    public var value: JSONValue

    public init(file: String, index: Int, value: JSONValue) {
        self.file = file
        self.index = index
        self.value = value
    }

    /// `Kind/name` as written in the document, when it has them.
    public var objectLabel: String? {
        guard let kind = value["kind"]?.stringValue else { return nil }
        return value["metadata"]?["name"]?.stringValue.map { "\(kind)/\($0)" } ?? kind
    }
}

/// Reads manifests from a file or a directory.
public enum ManifestFiles {
    /// The documents of `path`: a file, or a directory's `*.yaml`, `*.yml` and `*.json` files in name
    /// order (not recursive). YAML files may hold several documents; empty ones are skipped.
    public static func load(path: String) throws -> [SourcedDocument] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ClientError("\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return try loadFile(path) }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw ClientError("\(path): cannot list the directory (\(error.localizedDescription))")
        }
        let files = names.filter { name in
            let lowered = name.lowercased()
            return !name.hasPrefix(".") && (lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") || lowered.hasSuffix(".json"))
        }.sorted().map { (path as NSString).appendingPathComponent($0) }
            .filter { file in
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &isDir) && !isDir.boolValue
            }
        guard !files.isEmpty else { throw ClientError("\(path): the directory has no .yaml, .yml or .json files") }
        return try files.flatMap(loadFile)
    }

    static func loadFile(_ file: String) throws -> [SourcedDocument] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw ClientError("\(file): cannot read the file (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ClientError("\(file): not UTF-8 text") }
        let values: [JSONValue?]
        if file.lowercased().hasSuffix(".json") {
            do {
                values = [try JSONValue.parse(data)]
            } catch {
                throw ClientError("\(file): invalid JSON (\(Self.describeJSONError(error)))")
            }
        } else {
            do {
                values = try YAMLText.documents(text)
            } catch {
                throw ClientError("\(file):\(error.line.map { "\($0):" } ?? "") \(error.message)")
            }
        }
        return values.enumerated().compactMap { index, value in
            value.map { SourcedDocument(file: file, index: index, value: $0) }
        }
    }

    private static func describeJSONError(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            if let underlying = context.underlyingError { return "\(underlying)" }
            return context.debugDescription
        }
        return "\(error)"
    }
}

/// YAML text to `JSONValue`s with the scalar types Yams resolves (YAML 1.1 core-ish: `yes`/`no` are
/// booleans, `0x1F` an integer), except that timestamps stay strings as they would in JSON.
public enum YAMLText {
    /// A syntax or typing problem, with the 1-based line when known.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var line: Int?
        public var message: String
        public var description: String { (line.map { "line \($0): " } ?? "") + message }
    }

    static let resolver = Resolver.default.removing(.timestamp)

    /// Every document of `text` in order; nil for an empty document.
    public static func documents(_ text: String) throws(Failure) -> [JSONValue?] {
        var result: [JSONValue?] = []
        do {
            // Parser directly, not compose_all: its sequence swallows syntax errors.
            let parser = try Parser(yaml: text, resolver: resolver)
            while let node = try parser.nextRoot() {
                try checkKeys(node)
                result.append(try convert(node.any, line: node.mark?.line))
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(line: line(of: error), message: describe(error))
        }
        return result
    }

    /// Mapping keys must be strings: a key such as `80:` or `yes:` is reported with its line.
    static func checkKeys(_ node: Yams.Node) throws(Failure) {
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                if case .scalar = key, [Tag.Name.str.rawValue, Tag.Name.merge.rawValue].contains(key.tag.rawValue) {
                    // a string key
                } else {
                    let shown = key.scalar?.string ?? "(a \(key.mapping != nil ? "mapping" : "list"))"
                    throw Failure(line: key.mark?.line, message: "mapping key \(shown) is not a string; quote it, e.g. \"\(shown)\":")
                }
                try checkKeys(value)
            }
        case .sequence(let sequence):
            for element in sequence { try checkKeys(element) }
        case .scalar, .alias:
            break
        }
    }

    /// Converts what Yams constructed (Int, Double, Bool, String, NSNull, arrays, dictionaries).
    static func convert(_ value: Any, line: Int?) throws(Failure) -> JSONValue? {
        switch value {
        case is NSNull: return nil
        default: return try element(value, line: line)
        }
    }

    private static func element(_ value: Any, line: Int?) throws(Failure) -> JSONValue {
        switch value {
        case is NSNull: return .null
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let i as Int64: return .int(i)
        case let d as Double:
            guard d.isFinite else { throw Failure(line: line, message: "\(d) cannot be represented in JSON") }
            return .double(d)
        case let s as String: return .string(s)
        case let data as Data: return .string(data.base64EncodedString())
        case let date as Date: return .string(ISO8601DateFormatter().string(from: date))
        case let array as [Any]: return .array(try array.map { (v: Any) throws(Failure) -> JSONValue in try element(v, line: line) })
        case let dictionary as [AnyHashable: Any]:
            var members: [String: JSONValue] = [:]
            for (key, v) in dictionary {
                guard let name = key.base as? String else {
                    throw Failure(line: line, message: "mapping key \(key.base) is not a string; quote it")
                }
                members[name] = try element(v, line: line)
            }
            return .object(members)
        case let set as Set<AnyHashable>:
            return .array(try set.map { (v: AnyHashable) throws(Failure) -> JSONValue in try element(v.base, line: line) })
        default:
            return .string(String(describing: value))
        }
    }

    static func line(of error: any Error) -> Int? {
        guard let error = error as? YamlError else { return nil }
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        case .duplicatedKeysInMapping(_, let context): return context.mark.line
        default: return nil
        }
    }

    /// A Yams error without the snippet of the whole text it carries.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return "\(error)" }
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            let prefix = context.map { "\($0.text) (line \($0.mark.line)): " } ?? ""
            return "invalid YAML: \(prefix)\(problem)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "invalid YAML: duplicate key \(duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", "))"
        case .reader(let problem, _, _, _):
            return "invalid YAML: \(problem)"
        default:
            return "invalid YAML: \(error)"
        }
    }
}
