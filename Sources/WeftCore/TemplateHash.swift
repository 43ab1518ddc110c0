import Foundation

/// A short stable hash of a replica template, to tell replicas of the current template from old ones.
public enum TemplateHash {
    /// 10 lower-case base-36 characters of FNV-1a over the template's canonical JSON.
    public static func of(_ template: ReplicaTemplate) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(template)) ?? Data()
        return fnv(Array(data))
    }

    /// 10 lower-case base-36 characters of FNV-1a over `bytes`.
    public static func fnv(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let text = String(hash, radix: 36)
        return String(String(repeating: "0", count: max(0, 10 - text.count)) + text).suffix(10).description
    }

    /// The name of a new replica: `<deployment>-<hash>-<suffix>`.
    public static func replicaName(deployment: String, hash: String, suffix: String) -> String {
        "\(deployment)-\(hash)-\(suffix)"
    }

    /// Five random characters from an alphabet without vowels (no accidental words), like Kubernetes.
    public static func randomSuffix<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}
