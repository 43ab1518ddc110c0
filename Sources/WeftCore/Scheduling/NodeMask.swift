/// A set of node indexes as a bit set: the nodes that pass the filters that do not depend on
/// allocations (ready, nodeSelector, taints), computed once per kind of request.
struct NodeMask: Sendable, Hashable {
    private(set) var words: [UInt64]

    init(count: Int, allSet: Bool) {
        let wordCount = (count + 63) / 64
        words = Array(repeating: allSet ? ~0 : 0, count: wordCount)
        if allSet, count % 64 != 0 {
            words[wordCount - 1] = (1 << UInt64(count % 64)) - 1
        }
    }

    subscript(index: Int) -> Bool {
        get { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
        set {
            if newValue {
                words[index >> 6] |= 1 << UInt64(index & 63)
            } else {
                words[index >> 6] &= ~(1 << UInt64(index & 63))
            }
        }
    }

    mutating func formIntersection(_ other: NodeMask) {
        for i in words.indices { words[i] &= other.words[i] }
    }

    mutating func formUnion(_ other: NodeMask) {
        for i in words.indices { words[i] |= other.words[i] }
    }

    mutating func subtract(_ other: NodeMask) {
        for i in words.indices { words[i] &= ~other.words[i] }
    }
}
