/// The node settings `weft agent` takes as text — `--capacity cpu=4,memory=8Gi` and `--labels k=v,...` —
/// checked with the same rules the API applies. Errors are `FieldError`s whose message the command
/// prefixes with the flag.
public enum NodeSettingsText {
    /// `cpu=QUANTITY,memory=QUANTITY`, either or both; e.g. `cpu=4,memory=8Gi` or `cpu=1500m`.
    public static func capacity(_ text: String) throws -> ResourceList {
        var capacity = ResourceList()
        for (key, value) in try pairs(text, example: "cpu=4,memory=8Gi") {
            switch key {
            case "cpu":
                guard let millicores = Quantity.millicores(value), millicores > 0 else {
                    throw FieldError(path: "cpu", message: "\"\(value)\" is not a CPU quantity such as 4, 0.5 or 1500m")
                }
                capacity.cpu = value
            case "memory":
                guard let bytes = Quantity.bytes(value), bytes > 0 else {
                    throw FieldError(path: "memory", message: "\"\(value)\" is not a memory quantity such as 8Gi, 512Mi or 1000000000")
                }
                capacity.memory = value
            default:
                throw FieldError(path: key, message: "unknown resource \"\(key)\"; use cpu and memory, e.g. cpu=4,memory=8Gi")
            }
        }
        return capacity
    }

    /// `key=value,...` with Kubernetes label syntax; an empty text is no labels.
    public static func labels(_ text: String) throws -> [String: String] {
        if text.isEmpty { return [:] }
        let labels = Dictionary(try pairs(text, example: "zone=a,disk=ssd"), uniquingKeysWith: { $1 })
        if let problem = Validation.validateLabels(labels, at: FieldPath()).first {
            throw problem
        }
        return labels
    }

    private static func pairs(_ text: String, example: String) throws -> [(String, String)] {
        var seen = Set<String>()
        var result: [(String, String)] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw FieldError(path: "", message: "\"\(item)\" is not key=value; write e.g. \(example)")
            }
            let key = String(parts[0])
            guard seen.insert(key).inserted else {
                throw FieldError(path: key, message: "\"\(key)\" is given twice")
            }
            result.append((key, String(parts[1])))
        }
        return result
    }
}
