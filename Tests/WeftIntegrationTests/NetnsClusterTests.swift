import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The shop across real hosts: network namespaces joined by a bridge (Tests/netns/hosts.sh), a
/// control-plane host and three node hosts, each node with its own loopback (VIPs, DNS on port 53)
/// and address, as separate machines would have. Every cross-host byte travels between namespaces
/// that exist only for the test.
@Suite("Hosts in network namespaces", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: NetnsSupport.available, Comment(rawValue: NetnsSupport.unavailableReason ?? "")))
struct NetnsClusterTests {
    static let shopDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/shop")
    static let tiers = ["frontend": 3, "cart": 2, "catalog": 2]
    static let frontend = "frontend.default.svc.weft.internal"

    /// The shop's manifests, each tier pinned to a node when `placement` names one.
    private func shop(pinned placement: [String: String] = [:]) throws -> String {
        var documents: [String] = []
        for file in ["catalog", "cart", "frontend", "policy"] {
            var text = try String(contentsOf: Self.shopDirectory.appendingPathComponent("\(file).yaml"), encoding: .utf8)
            if let node = placement[file] {
                let command = "      command: [\"weft-demo\"]\n"
                #expect(text.contains(command), "examples/shop/\(file).yaml changed shape")
                text = text.replacingOccurrences(of: command, with: command + "      nodeSelector:\n        weft.io/node: \(node)\n")
            }
            documents.append(text)
        }
        return documents.joined(separator: "\n---\n")
    }

    private func replicas(_ cluster: NetnsCluster) async throws -> [[String: Any]] {
        try await cluster.items("replicas")
    }

    /// Waits until every tier has its desired number of Ready replicas, none on `avoiding`.
    private func shopReady(_ cluster: NetnsCluster, avoiding host: Int? = nil, timeout: Duration = .seconds(60)) async throws {
        let avoided = host.map(cluster.nodeName)
        try await eventually(timeout: timeout, "every shop tier Ready\(avoided.map { " off \($0)" } ?? "")") {
            let items = try await replicas(cluster)
            return Self.tiers.allSatisfy { tier, desired in
                items.filter { $0["deployment"] as? String == tier && $0["ready"] as? Bool == true && $0["node"] as? String != avoided }.count == desired
            }
        }
    }

    /// `(service, address)` of each answer in a weft-demo answer and its nested upstreams.
    private func hops(_ json: String) -> [(service: String, address: String)] {
        var result: [(String, String)] = []
        var object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        while let current = object {
            result.append((current["service"] as? String ?? "error", current["address"] as? String ?? ""))
            object = current["upstream"] as? [String: Any]
        }
        return result
    }

    @Test("the shop's tiers on three hosts answer by DNS name from every host, each hop crossing hosts inside mTLS; a caller outside the mesh may not call the cart")
    func shopAcrossHosts() async throws {
        try await withNetnsCluster(agents: 3) { cluster in
            let placement = ["frontend": 2, "cart": 3, "catalog": 4]
            try await cluster.apply(try shop(pinned: placement.mapValues(cluster.nodeName)), name: "shop.yaml")
            try await shopReady(cluster)
            for item in try await replicas(cluster) {
                let tier = try #require(item["deployment"] as? String)
                #expect(item["node"] as? String == cluster.nodeName(placement[tier]!), "\(item)")
                #expect((item["address"] as? String)?.hasPrefix(cluster.address(placement[tier]!) + ":") == true, "\(item)")
            }

            // From every node host, with curl and the system resolver: the host's resolv.conf names its own
            // Weft DNS (127.0.0.1:53 of its namespace), the answer comes back through all three tiers.
            for host in cluster.nodeHosts {
                var last = ""
                try await eventually(timeout: .seconds(20), "the shop answers on \(cluster.nodeName(host))") {
                    let answer = try await cluster.run(on: host, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(Self.frontend)/"])
                    last = "\(answer)"
                    return hops(answer.stdout).map(\.service) == ["frontend", "cart", "catalog"]
                }
                let answer = try await cluster.run(on: host, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(Self.frontend)/"])
                let chain = hops(answer.stdout)
                #expect(chain.map(\.service) == ["frontend", "cart", "catalog"], "\(last)")
                for (service, address) in chain {
                    #expect(address.hasPrefix(cluster.address(placement[service]!) + ":"), "\(service) answered from \(address)")
                }
            }
            // The names resolve to the same VIP on every host (each has its own DNS server).
            var vips: Set<String> = []
            for host in cluster.nodeHosts {
                vips.insert(try await cluster.onHost(host) { try resolveA("cart.default.svc.weft.internal") })
            }
            #expect(vips.count == 1 && vips.first?.hasPrefix("127.10.") == true, "\(vips)")

            // On the wire between hosts (captured at the switch): only the API (7443) and tunnel (15008)
            // ports, TLS records, never the request.
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpdump") {
                let capture = cluster.workDirectory.appendingPathComponent("switch.pcap").path
                let tcpdump = ChildProcess(executable: URL(fileURLWithPath: NetnsSupport.ip!),
                                           arguments: ["netns", "exec", cluster.switchNamespace, "/usr/bin/tcpdump", "-i", "br0", "-U", "-s", "0", "-w", capture, "tcp"])
                try tcpdump.start()
                try await Task.sleep(for: .seconds(1))
                let marker = "capture-\(UUID().uuidString.prefix(12))"
                for host in cluster.nodeHosts {
                    let answer = try await cluster.run(on: host, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(Self.frontend)/"])
                    #expect(hops(answer.stdout).map(\.service) == ["frontend", "cart", "catalog"], "\(answer)")
                }
                let probe = try await cluster.run(on: 4, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(Self.frontend)/\(marker)"])
                #expect(probe.stdout.contains(marker), "the frontend's 404 names the path: \(probe)")
                try await Task.sleep(for: .seconds(1))
                await tcpdump.terminate(gracePeriod: .seconds(5))
                func packets(_ filter: String) async throws -> [String] {
                    let read = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/tcpdump"), arguments: ["-r", capture, "-nn", filter])
                    try read.start()
                    _ = try await read.waitForExit(timeout: .seconds(30))
                    return read.lines(.stdout)
                }
                let tunnel = try await packets("tcp port 15008")
                let other = try await packets("tcp and not port 15008 and not port \(NetnsCluster.apiPort)")
                #expect(tunnel.count > 20, "the capture saw \(tunnel.count) tunnel packets")
                #expect(other.isEmpty, "plain TCP between hosts outside the API and tunnel ports: \(other.prefix(5))")
                let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
                #expect(bytes.range(of: Data(marker.utf8)) == nil, "the request crossed hosts in plaintext")
                #expect(bytes.range(of: Data([0x17, 0x03, 0x03])) != nil, "no TLS application-data record between hosts")
                print("netns shop: \(tunnel.count) tunnel packets between hosts, \(other.count) others")
            } else {
                print("skipped the capture between hosts: it needs /usr/bin/tcpdump")
            }

            // The cart admits only the frontend: from a host, outside the mesh, the call is refused.
            let outsider = try await cluster.run(on: 4, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://cart.default.svc.weft.internal/"])
            #expect(outsider.exit != .exited(0) || !outsider.stdout.contains("\"service\":\"cart\""), "\(outsider)")
        }
    }

    @Test("a host unplugged or killed: its replicas are Ready on the other hosts within 10 s while a load from another host keeps being served; back, it stops what was replaced, never more than desired + surge")
    func hostFailures() async throws {
        try await withNetnsCluster(agents: 3) { cluster in
            try await cluster.apply(try shop(), name: "shop.yaml")
            try await shopReady(cluster)

            // Live (not terminating) replicas per tier, as often as the API can be asked.
            let monitor = Task {
                var most: [String: Int] = [:]
                while !Task.isCancelled {
                    if let items = try? await replicas(cluster) {
                        for tier in Self.tiers.keys {
                            let live = items.filter { $0["deployment"] as? String == tier && $0["phase"] as? String != "Terminating" }.count
                            most[tier] = max(most[tier] ?? 0, live)
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                return most
            }
            let load = LoadLoop.start(cluster: cluster, host: 2, name: Self.frontend)
            defer {
                load.cancel()
                monitor.cancel()
            }
            try await Task.sleep(for: .seconds(2))

            // 1. Host 4 unplugged: it keeps running, cut off.
            let unplugged = try await replicas(cluster).filter { $0["node"] as? String == cluster.nodeName(4) }
            let unpluggedPIDs = unplugged.compactMap { ($0["status"] as? [String: Any])?["pid"] as? Int }.map(Int32.init)
            #expect(!unplugged.isEmpty, "spread put nothing on host4")
            let cut = ContinuousClock.now
            try await cluster.cut(4)
            // Until hosts.sh returns the cut may not have taken effect: a request sent meanwhile is in flight.
            let cutDone = ContinuousClock.now
            try await eventually(timeout: .seconds(15), "host4 NotReady") {
                try await cluster.items("nodes").contains { $0["name"] as? String == cluster.nodeName(4) && $0["ready"] as? Bool == false }
            }
            let notReady = ContinuousClock.now - cut
            try await shopReady(cluster, avoiding: 4, timeout: .seconds(20))
            let replaced = ContinuousClock.now - cut
            #expect(replaced <= .seconds(10), "replacements Ready \(replaced) after the cut")
            try await Task.sleep(for: .seconds(2))
            #expect(unpluggedPIDs.allSatisfy(isAlive), "a cut-off host keeps its replicas running")

            let healed = ContinuousClock.now
            try await cluster.heal(4)
            try await eventually(timeout: .seconds(30), "host4 Ready again") {
                try await cluster.items("nodes").contains { $0["name"] as? String == cluster.nodeName(4) && $0["ready"] as? Bool == true }
            }
            let readyAgain = ContinuousClock.now - healed
            try await eventually(timeout: .seconds(30), "host4 stopped its replaced replicas") { unpluggedPIDs.allSatisfy { !isAlive($0) } }
            let stoppedAfter = ContinuousClock.now - healed
            try await eventually(timeout: .seconds(20), "the replaced objects are gone") {
                let names = Set(try await replicas(cluster).compactMap { $0["name"] as? String })
                return unplugged.allSatisfy { !names.contains($0["name"] as? String ?? "") }
            }
            try await shopReady(cluster)

            // 2. Host 3 crashes: the agent and its replicas die together.
            let crashed = try await replicas(cluster).filter { $0["node"] as? String == cluster.nodeName(3) }
            #expect(!crashed.isEmpty, "nothing ran on host3")
            let killed = ContinuousClock.now
            try await cluster.killHost(3)
            try await shopReady(cluster, avoiding: 3, timeout: .seconds(20))
            let replacedAfterKill = ContinuousClock.now - killed
            #expect(replacedAfterKill <= .seconds(10), "replacements Ready \(replacedAfterKill) after the kill")
            try await Task.sleep(for: .seconds(1))

            // It restarts with its stored credential: no replica comes back there twice.
            try await cluster.startAgent(3)
            try await eventually(timeout: .seconds(20), "host3 Ready again") {
                try await cluster.items("nodes").contains { $0["name"] as? String == cluster.nodeName(3) && $0["ready"] as? Bool == true }
            }
            try await eventually(timeout: .seconds(20), "the crashed host's replica objects are gone") {
                let names = Set(try await replicas(cluster).compactMap { $0["name"] as? String })
                return crashed.allSatisfy { !names.contains($0["name"] as? String ?? "") }
            }
            try await shopReady(cluster)
            try await Task.sleep(for: .seconds(1))
            let onHost3 = try await cluster.pids(on: 3)
            #expect(onHost3 == [cluster.agent(3)!.processIdentifier], "host3 runs only its agent: \(onHost3)")
            let items = try await replicas(cluster)
            for (tier, desired) in Self.tiers {
                #expect(items.filter { $0["deployment"] as? String == tier }.count == desired, "\(tier): \(items.count) replicas")
            }

            let outcomes = try await load.stop()
            monitor.cancel()
            let most = await monitor.value
            for (tier, desired) in Self.tiers {
                #expect((most[tier] ?? 0) <= desired + 1, "\(tier): \(most[tier] ?? 0) live replicas, desired \(desired) + surge 1")
            }
            let failed = outcomes.filter { $0.failure != nil }
            func at(_ outcome: LoadLoop.Outcome) -> String {
                let since = outcome.started < killed ? outcome.started - cut : outcome.started - killed
                return "\(outcome.started < killed ? "cut" : "kill")+\(since): \(outcome.failure ?? "")"
            }
            print("""
                netns failover: cut → NotReady \(notReady), replacements Ready \(replaced); healed → Ready \(readyAgain), \
                replaced processes stopped \(stoppedAfter); kill → replacements Ready \(replacedAfterKill); \
                \(outcomes.count) requests, \(failed.count) failed\(failed.isEmpty ? "" : ": " + failed.prefix(10).map(at).joined(separator: "; ")); \
                most live replicas \(most)
                """)
            #expect(outcomes.count > 100, "too few requests: \(outcomes.count)")
            // A request fails only when it was already on its way through the lost host when it went:
            // later ones are sent to the surviving replicas (connect retries first, then the endpoints).
            let inFlightLosses = failed.filter { outcome in
                (outcome.started <= cutDone && cut <= outcome.finished) || (outcome.started <= killed && killed <= outcome.finished)
            }
            #expect(failed.count == inFlightLosses.count, "requests failed beyond those in flight at the cut and the kill: \(failed.map(at))")
        }
    }

    @Test("kill -9 of the server under steady load loses no request: agents keep their replicas, VIPs and DNS; the restarted server finds everything, agents resume their watches and a scale takes effect")
    func staticStability() async throws {
        try await withNetnsCluster(agents: 3) { cluster in
            try await cluster.apply(try shop(), name: "shop.yaml")
            try await shopReady(cluster)
            let before = try await replicas(cluster)
            let names = Set(before.compactMap { $0["name"] as? String })
            let pids = before.compactMap { ($0["status"] as? [String: Any])?["pid"] as? Int }.map(Int32.init)
            #expect(pids.count == names.count)
            let counts = try await objectCounts(cluster)

            let loads = cluster.nodeHosts.map { LoadLoop.start(cluster: cluster, host: $0, name: Self.frontend) }
            defer { for load in loads { load.cancel() } }
            try await Task.sleep(for: .seconds(2))

            let crashed = ContinuousClock.now
            try await cluster.crashServer()
            let stderrAtCrash = cluster.nodeHosts.map { cluster.agent($0)!.lines(.stderr).count }
            // Longer than the node grace: nothing on the agents may depend on hearing from the server.
            try await Task.sleep(for: .seconds(cluster.nodeGrace * 2 + 2))
            for host in cluster.nodeHosts {
                #expect(cluster.agent(host)!.isRunning, "the agent on \(cluster.nodeName(host)) exited")
                let vip = try await cluster.onHost(host) { try resolveA(Self.frontend) }
                #expect(vip.hasPrefix("127.10."), "DNS on \(cluster.nodeName(host)) during the outage: \(vip)")
            }
            #expect(pids.allSatisfy(isAlive), "a replica stopped while the server was down")
            let outage = loads.flatMap(\.recorded).filter { $0.started >= crashed }
            let restarted = ContinuousClock.now
            let logLines = zip(cluster.nodeHosts, stderrAtCrash).map { cluster.agent($0)!.lines(.stderr).count - $1 }

            try await cluster.startServer()
            let back = ContinuousClock.now - restarted
            try await eventually(timeout: .seconds(20), "every node Ready after the restart") {
                let nodes = try await cluster.items("nodes")
                return cluster.nodeHosts.allSatisfy { host in nodes.contains { $0["name"] as? String == cluster.nodeName(host) && $0["ready"] as? Bool == true } }
            }
            // Nothing lost, nothing replaced.
            #expect(try await objectCounts(cluster) == counts)
            let after = try await replicas(cluster)
            #expect(Set(after.compactMap { $0["name"] as? String }) == names, "replicas changed across the restart")
            #expect(after.allSatisfy { $0["ready"] as? Bool == true })
            #expect(pids.allSatisfy(isAlive))
            let tokens = try await cluster.cli(["token", "list"])
            #expect(tokens.stdout.contains("netns hosts"), "\(tokens)")

            // The agents resumed their watches: a scale reaches the node that runs the new replica, and
            // the other nodes' proxies send it requests.
            let scaled = ContinuousClock.now
            #expect(try await cluster.cli(["scale", "deployment", "frontend", "--replicas", "4"]).exit == .exited(0))
            var added: [String: Any] = [:]
            try await eventually(timeout: .seconds(20), "the fourth frontend Ready") {
                let items = try await replicas(cluster).filter { $0["deployment"] as? String == "frontend" && $0["ready"] as? Bool == true }
                added = items.first { !names.contains($0["name"] as? String ?? "") } ?? [:]
                return items.count == 4
            }
            let scaleTook = ContinuousClock.now - scaled
            let newName = try #require(added["name"] as? String)
            do {
                try await eventually(timeout: .seconds(20), "the new frontend answers requests from every host") {
                    loads.allSatisfy { load in load.recorded.contains { $0.started > scaled && $0.replicas.first == newName } }
                }
            } catch {
                Issue.record(error)
                for (host, load) in zip(cluster.nodeHosts, loads) {
                    let after = load.recorded.filter { $0.started > scaled }
                    var seen: [String: Int] = [:]
                    for outcome in after { seen[outcome.replicas.first ?? "-", default: 0] += 1 }
                    print("host\(host): \(after.count) requests after the scale, by frontend \(seen)")
                }
            }

            var outcomes: [LoadLoop.Outcome] = []
            for load in loads { outcomes += try await load.stop() }
            let failed = outcomes.filter { $0.failure != nil }
            for outcome in failed.prefix(10) {
                print("failed: crash+\(outcome.started - crashed) (restart at +\(restarted - crashed)) after \(outcome.finished - outcome.started): \(outcome.failure ?? "")")
            }
            print("""
                netns static stability: \(outage.count) requests during the \(restarted - crashed) outage, \
                \(outage.filter { $0.failure != nil }.count) failed; server ready again \(back) after its restart; \
                scale took effect in \(scaleTook); \(outcomes.count) requests in all, \(failed.count) failed; \
                agent log lines during the outage \(logLines)
                """)
            #expect(outage.count > 100, "too few requests during the outage: \(outage.count)")
            #expect(failed.isEmpty, "\(failed.count) requests failed")
            // Waiting for the server costs each agent a bounded trickle of retries, not a spin.
            #expect(logLines.allSatisfy { $0 < 150 }, "agent log lines while the server was down: \(logLines)")
        }
    }

    private func objectCounts(_ cluster: NetnsCluster) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for kind in ["deployments", "services", "authorizationpolicies", "nodes", "endpoints"] {
            counts[kind] = try await cluster.items(kind).count
        }
        return counts
    }
}
