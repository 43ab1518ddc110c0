/// A container image's name on a node, `NAME[:TAG]` (`shop/cart:1.2`; the tag defaults to `latest`),
/// as `weft image import --name` records it and a template's `image` asks for it.
public struct ImageReference: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Path components of lowercase letters, digits and `.`, `_`, `-`, separated by `/`.
    public let name: String
    public let tag: String

    /// Parses `NAME[:TAG]`; nil when it is not one (see ``problem(_:)``).
    public init?(_ text: String) {
        guard Self.problem(text) == nil else { return nil }
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            name = String(text[..<colon])
            tag = String(text[text.index(after: colon)...])
        } else {
            name = text
            tag = "latest"
        }
    }

    public var description: String { "\(name):\(tag)" }

    /// Why `text` is not an image reference, or nil when it is one.
    public static func problem(_ text: String) -> String? {
        var name = Substring(text)
        var tag: Substring?
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            name = text[..<colon]
            tag = text[text.index(after: colon)...]
        }
        let example = "write NAME[:TAG], e.g. shop/cart:1.2"
        if name.isEmpty || name.count > 255 { return "\"\(text)\" has no image name; \(example)" }
        if text.contains("@") { return "\"\(text)\": references by digest are not supported; \(example)" }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            let allowed = component.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".contains($0) }
            guard !component.isEmpty, allowed, let first = component.first, let last = component.last,
                  first.isLetter || first.isNumber, last.isLetter || last.isNumber else {
                return "\"\(text)\" is not an image name: path components of lowercase letters, digits, '.', '_', '-' separated by '/'; \(example)"
            }
        }
        if let tag {
            let allowed = tag.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
            guard !tag.isEmpty, tag.count <= 128, allowed, tag.first != "." && tag.first != "-" else {
                return "\"\(text)\" has an invalid tag: up to 128 letters, digits, '.', '_', '-', not starting with '.' or '-'; \(example)"
            }
        }
        return nil
    }
}
