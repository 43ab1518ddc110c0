/// Where forwarded queries go: an IP address and port.
public struct DNSUpstream: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    /// `IP`, `IP:PORT`, `IPv6` or `[IPv6]:PORT`; the port defaults to 53. Names are refused: the
    /// resolver cannot depend on resolving.
    public init(parsing text: String) throws(DNSUpstreamError) {
        var host = Substring(text)
        var port = 53
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw DNSUpstreamError(text: text) }
            let rest = host[host.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else { throw DNSUpstreamError(text: text) }
                port = number
            }
            host = host[host.index(after: host.startIndex)..<close]
            guard host.contains(":") else { throw DNSUpstreamError(text: text) }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]) else { throw DNSUpstreamError(text: text) }
            port = number
            host = host[..<colon]
        }
        guard (1...65535).contains(port), IPv4Address(String(host)) != nil || Self.looksLikeIPv6(host) else {
            throw DNSUpstreamError(text: text)
        }
        self.init(host: String(host), port: port)
    }

    private static func looksLikeIPv6(_ text: Substring) -> Bool {
        text.contains(":") && text.count <= 45 && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" || $0.isLetter }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The `nameserver` addresses of a resolv.conf (resolv.conf(5)): comments and other options are
    /// ignored, as are lines that are not an address.
    public static func fromResolvConf(_ text: String) -> [DNSUpstream] {
        var upstreams: [DNSUpstream] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver", !fields[0].hasPrefix("#") else { continue }
            // A scoped address (fe80::1%eth0) keeps its scope; the port is always 53 here.
            if let upstream = try? DNSUpstream(parsing: fields[1].contains(":") ? "[\(fields[1])]" : String(fields[1])) {
                upstreams.append(upstream)
            }
        }
        return upstreams
    }
}

public struct DNSUpstreamError: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var description: String {
        "\"\(text)\" is not a DNS upstream: use an IP address with an optional port, e.g. 127.0.0.1:5300 or [::1]:53"
    }
}
