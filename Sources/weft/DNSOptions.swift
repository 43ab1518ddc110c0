import ArgumentParser
import Foundation
import Logging
import WeftCore
import WeftDNS

/// The node DNS server's flags, shared by `weft server` (its local agent) and `weft agent`.
struct DNSOptions: ParsableArguments {
    @Option(name: .long, help: "Address of the node's DNS server, UDP and TCP (HOST:PORT; port 0 picks a free port; port 53 needs root).")
    var dnsListen: String = "127.0.0.1:1053"

    @Option(name: .long, help: ArgumentHelp(
        "Cluster domain: services are <service>.<namespace>.svc.<domain> (default: weft.internal; for weft agent, the server's).",
        valueName: "domain"))
    var clusterDomain: String?

    @Option(name: .long, help: ArgumentHelp(
        "Upstream resolver for names outside the cluster (IP or IP:PORT; repeatable). Default: the nameservers in /etc/resolv.conf. `none`: answer REFUSED instead.",
        valueName: "address"))
    var dnsUpstream: [String] = []

    @Option(name: .long, help: "TTL in seconds of cluster DNS answers (and of their negative answers).")
    var dnsTtl: UInt32 = 5

    @Flag(name: .long, help: "Run no DNS server on this node.")
    var noDns = false

    static let defaultClusterDomain = "weft.internal"

    /// Checks `domain` (the flag's, or a default) as a cluster domain.
    static func checkClusterDomain(_ domain: String) throws {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        if domain.isEmpty || labels.contains(where: { Validation.dnsLabelProblem(String($0)) != nil }) {
            throw ValidationError("--cluster-domain: \"\(domain)\" is not a domain such as weft.internal (dot-separated lower-case DNS labels)")
        }
    }

    /// The DNS server's settings from the flags; nil with `--no-dns`.
    func configuration(logger: Logger) throws -> DNSServerConfiguration? {
        try Self.checkClusterDomain(clusterDomain ?? Self.defaultClusterDomain)
        guard dnsTtl <= 86400 else {
            throw ValidationError("--dns-ttl: \(dnsTtl) is more than a day (86400 s); cluster answers change with every replica")
        }
        if noDns { return nil }
        let (host, port) = try ListenAddress.parse(dnsListen, option: "--dns-listen")
        guard IPAddressText.isValid(host) else {
            throw ValidationError("--dns-listen: \"\(host)\" is not an IP address; use e.g. 127.0.0.1:1053 or 0.0.0.0:53")
        }
        var upstreams: [DNSUpstream] = []
        if dnsUpstream == ["none"] {
            upstreams = []
        } else if dnsUpstream.isEmpty {
            let text = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
            // Our own address among the host's nameservers would send queries round in a loop.
            upstreams = DNSUpstream.fromResolvConf(text).filter { !($0.port == port && ($0.host == host || ["0.0.0.0", "::"].contains(host))) }
            if upstreams.isEmpty {
                logger.warning("no upstream resolver in /etc/resolv.conf; names outside the cluster will be REFUSED (set --dns-upstream)")
            }
        } else {
            for text in dnsUpstream {
                do {
                    upstreams.append(try DNSUpstream(parsing: text))
                } catch {
                    throw ValidationError("--dns-upstream: \(error)\(text == "none" ? " (`none` stands alone)" : "")")
                }
            }
        }
        return DNSServerConfiguration(host: host, port: port, upstreams: upstreams)
    }
}
