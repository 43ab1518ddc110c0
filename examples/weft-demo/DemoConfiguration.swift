#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything `weft-demo` reads from its environment, validated once at start-up.
///
/// `parse(environment:hostname:)` is a pure function so that it can be tested without a process.
struct DemoConfiguration: Sendable, Equatable {
    /// Address the listener binds to (`BIND`), an IPv4 or IPv6 literal; defaults to `WEFT_REPLICA_IP`
    /// when Weft sets it, else all addresses.
    var bindHost: String = "0.0.0.0"
    /// Listen port (`PORT`); 0 asks the kernel for a free one.
    var port: Int = 8080
    /// Reported as `version` (`VERSION`).
    var version: String = "v1"
    /// Share of `GET /` answered 500 (`FAIL_RATE`), 0.0 to 1.0.
    var failRate: Double = 0
    /// Latency added to every `GET /` (`DELAY_MS`).
    var delayMilliseconds: Int64 = 0
    /// Service called by each `GET /` (`UPSTREAM`).
    var upstream: UpstreamTarget? = nil
    /// Reported as `service` (`SERVICE_NAME`, else `WEFT_DEPLOYMENT`, else "weft-demo").
    var serviceName: String = "weft-demo"
    /// Reported as `replica` (`WEFT_REPLICA_NAME`, else the host name).
    var replicaName: String = "weft-demo"
    /// First half of the reported `address` (`WEFT_REPLICA_IP`).
    var replicaIP: String = "127.0.0.1"
    /// Weft's DNS server (`WEFT_DNS`, `host:port`): resolves `UPSTREAM` names when set; without it the
    /// system resolver does.
    var dnsServer: UpstreamTarget? = nil
    /// Domains tried after a short `UPSTREAM` name, as a resolv.conf `search` line would:
    /// `<namespace>.svc.<domain> svc.<domain> <domain>` from `WEFT_NAMESPACE` and `WEFT_CLUSTER_DOMAIN`.
    var searchDomains: [String] = []
    /// How long an upstream connection attempt may take.
    var upstreamConnectTimeoutMilliseconds: Int64 = 2_000
    /// How long an upstream may take to answer once connected.
    var upstreamResponseTimeoutMilliseconds: Int64 = 5_000

    /// Highest accepted `DELAY_MS`: ten minutes.
    static let maximumDelayMilliseconds: Int64 = 600_000

    /// Reads and validates the variables `weft-demo` understands. An empty value counts as unset.
    static func parse(
        environment: [String: String],
        hostname: String?
    ) throws(DemoConfigurationError) -> DemoConfiguration {
        func value(_ name: String) -> String? {
            guard let raw = environment[name], !raw.isEmpty else { return nil }
            return raw
        }
        var config = DemoConfiguration()

        if let raw = value("PORT") {
            guard let port = Int(raw), (0...65_535).contains(port) else {
                throw DemoConfigurationError(variable: "PORT", value: raw, expected: "an integer from 0 to 65535")
            }
            config.port = port
        }
        if let raw = value("BIND") {
            guard IPLiteral.isValid(raw) else {
                throw DemoConfigurationError(
                    variable: "BIND", value: raw, expected: "an IPv4 or IPv6 address such as 0.0.0.0 or 127.0.0.1"
                )
            }
            config.bindHost = raw
        }
        if let raw = value("VERSION") {
            config.version = raw
        }
        if let raw = value("FAIL_RATE") {
            guard let rate = Double(raw), rate.isFinite, (0.0...1.0).contains(rate) else {
                throw DemoConfigurationError(
                    variable: "FAIL_RATE", value: raw, expected: "a number from 0.0 to 1.0"
                )
            }
            config.failRate = rate
        }
        if let raw = value("DELAY_MS") {
            guard let delay = Int64(raw), (0...maximumDelayMilliseconds).contains(delay) else {
                throw DemoConfigurationError(
                    variable: "DELAY_MS", value: raw,
                    expected: "an integer number of milliseconds from 0 to \(maximumDelayMilliseconds)"
                )
            }
            config.delayMilliseconds = delay
        }
        if let raw = value("UPSTREAM") {
            guard let target = UpstreamTarget(parsing: raw) else {
                throw DemoConfigurationError(
                    variable: "UPSTREAM", value: raw,
                    expected: "host:port with a port from 1 to 65535, e.g. 127.0.0.1:8081 or backend:8080"
                )
            }
            config.upstream = target
        }
        if let raw = value("WEFT_DNS") {
            guard let server = UpstreamTarget(parsing: raw), IPLiteral.isValid(server.host) else {
                throw DemoConfigurationError(variable: "WEFT_DNS", value: raw, expected: "an IP address and port such as 127.0.0.1:1053")
            }
            config.dnsServer = server
        }
        if let domain = value("WEFT_CLUSTER_DOMAIN") {
            let namespace = value("WEFT_NAMESPACE") ?? "default"
            config.searchDomains = ["\(namespace).svc.\(domain)", "svc.\(domain)", domain]
        }
        config.serviceName = value("SERVICE_NAME") ?? value("WEFT_DEPLOYMENT") ?? "weft-demo"
        config.replicaName = value("WEFT_REPLICA_NAME") ?? hostname.flatMap { $0.isEmpty ? nil : $0 } ?? "weft-demo"
        if let raw = value("WEFT_REPLICA_IP") {
            guard IPLiteral.isValid(raw) else {
                throw DemoConfigurationError(
                    variable: "WEFT_REPLICA_IP", value: raw, expected: "an IPv4 or IPv6 address"
                )
            }
            config.replicaIP = raw
            // Run by Weft: listen only where the replica is meant to be reached, unless BIND says otherwise.
            if value("BIND") == nil { config.bindHost = raw }
        }
        return config
    }

    /// The `address` reported in answers: `WEFT_REPLICA_IP:port`, IPv6 in brackets.
    func replicaAddress(port: Int) -> String {
        IPLiteral.hostPort(replicaIP, port: port)
    }
}

/// A rejected environment variable; its description is the one line printed before exiting with status 2.
struct DemoConfigurationError: Error, Equatable, CustomStringConvertible {
    var variable: String
    var value: String
    var expected: String

    var description: String {
        "weft-demo: invalid \(variable)=\"\(value)\": expected \(expected)"
    }
}

/// `host:port` of the service that `GET /` calls.
struct UpstreamTarget: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Accepts `host:port`, `a.b.c.d:port` and `[v6]:port`.
    init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // bare IPv6 needs brackets
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }),
            let port = Int(portText), (1...65_535).contains(port)
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    var description: String { IPLiteral.hostPort(host, port: port) }
}

enum IPLiteral {
    static func isValid(_ text: String) -> Bool {
        isIPv4(text) || isIPv6(text)
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func hostPort(_ host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
