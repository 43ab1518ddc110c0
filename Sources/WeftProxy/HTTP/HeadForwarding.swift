import NIOCore
import WeftCore

/// The bytes of a parsed message head as they are forwarded to the other side.
enum HeadForwarding {
    /// `raw` (a complete head, as `head` was parsed from) for the next hop: unchanged when nothing
    /// must change, the common case; otherwise rebuilt with the start line's version set to
    /// HTTP/1.`minorVersion`, without hop-by-hop fields (and Transfer-Encoding when
    /// `droppingTransferEncoding`), with `connection: close` when `addingClose`. A `Connection:
    /// keep-alive` alone passes unchanged when nothing else changes: it is this proxy's option too.
    /// With `keepingUpgrade` (a protocol switch asked for or confirmed) `Upgrade` stays and the head
    /// gets `connection: upgrade`.
    static func forward(_ raw: ByteBuffer, _ head: HTTP1Head, minorVersion: Int, addingClose: Bool = false,
                        droppingTransferEncoding: Bool = false, keepingUpgrade: Bool = false) -> ByteBuffer {
        if passesUnchanged(head, minorVersion: minorVersion, addingClose: addingClose, droppingTransferEncoding: droppingTransferEncoding) {
            return raw
        }
        return raw.withUnsafeReadableBytes { p in
            var out = ByteBufferAllocator().buffer(capacity: p.count + 24)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[head.start..<head.versionRange.lowerBound]))
            out.writeStaticString(minorVersion == 1 ? "HTTP/1.1" : "HTTP/1.0")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[head.versionRange.upperBound..<head.startLineEnd]))
            if head.hasHopByHopFields || head.hasConnectionField || droppingTransferEncoding {
                for line in HTTP1Parser.keptFieldLines(p, head, droppingTransferEncoding: droppingTransferEncoding,
                                                       keepingUpgrade: keepingUpgrade) {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: p[line]))
                }
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: p[head.startLineEnd..<(head.length - 2)]))
            }
            if keepingUpgrade {
                out.writeStaticString(addingClose ? "connection: upgrade, close\r\n" : "connection: upgrade\r\n")
            } else if addingClose {
                out.writeStaticString("connection: close\r\n")
            }
            out.writeStaticString("\r\n")
            return out
        }
    }

    /// Whether `forward` returns the head as it is.
    static func passesUnchanged(_ head: HTTP1Head, minorVersion: Int, addingClose: Bool = false,
                                droppingTransferEncoding: Bool = false) -> Bool {
        !head.hasHopByHopFields && head.minorVersion == minorVersion && head.start == 0 && !addingClose
            && !droppingTransferEncoding
    }
}
