/// Parses Kubernetes resource quantities.
public enum Quantity {
    /// CPU in millicores: `500m` → 500, `2` → 2000, `0.5` → 500. Nil when malformed.
    public static func millicores(_ text: String) -> Int? {
        if text.hasSuffix("m") {
            guard let n = Int(text.dropLast()), n >= 0 else { return nil }
            return n
        }
        guard let value = decimal(text) else { return nil }
        return Int(exactly: (value * 1000).rounded())
    }

    /// Memory in bytes: `64Mi`, `1Gi`, `500M`, `1000`. Nil when malformed.
    public static func bytes(_ text: String) -> Int64? {
        let suffixes: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1024 * 1024), ("Gi", 1024 * 1024 * 1024), ("Ti", 1024 * 1024 * 1024 * 1024),
            ("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12),
        ]
        for (suffix, factor) in suffixes where text.hasSuffix(suffix) {
            guard let value = decimal(String(text.dropLast(suffix.count))) else { return nil }
            return Int64(exactly: (value * factor).rounded())
        }
        guard let value = decimal(text) else { return nil }
        return Int64(exactly: value.rounded())
    }

    private static func decimal(_ text: String) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              text.filter({ $0 == "." }).count <= 1, text.first != ".", text.last != "." else { return nil }
        return Double(text)
    }
}
