import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The netns runtime on simulated hosts (Tests/netns/hosts.sh): each agent runs with `--runtime netns`
/// and a pod CIDR of its own, so every replica gets a network namespace, a veth into the host's bridge
/// `weft0` and an address — all inside the host's namespace, made and removed by the agent. Service VIPs
/// come from 10.96.0.0/16, which each host makes local so its replicas reach the node proxy.
@Suite("The netns runtime on hosts in network namespaces", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: NetnsSupport.available, Comment(rawValue: NetnsSupport.unavailableReason ?? "")))
struct NetnsRuntimeTests {
    static let shopDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/shop")
    static let tiers = ["frontend": 3, "cart": 2, "catalog": 2]
    static let serviceBlock = "10.96.0.0/16"

    /// Host k's pod network.
    static func podPrefix(_ host: Int) -> String { "10.244.\(host)." }

    private func shop() throws -> String {
        try ["catalog", "cart", "frontend", "policy"].map {
            try String(contentsOf: Self.shopDirectory.appendingPathComponent("\($0).yaml"), encoding: .utf8)
        }.joined(separator: "\n---\n")
    }

    private func shopReady(_ cluster: NetnsCluster) async throws -> [[String: Any]] {
        var ready: [[String: Any]] = []
        try await eventually(timeout: .seconds(60), "every shop tier Ready") {
            let items = try await cluster.items("replicas")
            ready = items.filter { $0["ready"] as? Bool == true }
            return Self.tiers.allSatisfy { tier, desired in
                ready.filter { $0["deployment"] as? String == tier }.count == desired && items.filter { $0["deployment"] as? String == tier }.count == desired
            }
        }
        return ready
    }

    /// Runs `command` in the namespaces of the process `pid` (a replica): its network and its mounts, so
    /// its own /etc/resolv.conf.
    private func inReplica(_ pid: Int, _ command: [String], timeout: Duration = .seconds(20)) async throws -> CommandResult {
        let child = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/nsenter"), arguments: ["-t", String(pid), "-n", "-m", "--"] + command)
        try child.start()
        let exit = try await child.waitForExit(timeout: timeout)
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    /// The service chain of a weft-demo answer: (service, address) per hop.
    private func hops(_ json: String) -> [(service: String, address: String)] {
        var result: [(String, String)] = []
        var object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        while let current = object {
            result.append((current["service"] as? String ?? "error", current["address"] as? String ?? ""))
            object = current["upstream"] as? [String: Any]
        }
        return result
    }

    /// The interfaces of `host`'s network namespace.
    private func links(_ cluster: NetnsCluster, _ host: Int) async throws -> [String] {
        let result = try await cluster.run(on: host, NetnsSupport.ip!, ["-o", "link", "show"])
        return result.stdout.split(separator: "\n").compactMap { line in
            line.split(separator: ":").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? "" }
        }
    }

    @Test("the shop on the netns runtime: every replica has its own IP in its node's pod CIDR, getaddrinfo(\"cart\") and the VIP work from inside a replica; a killed replica comes back at another IP and names and VIPs follow; an agent crash and a stop leave no namespace, veth or bridge behind")
    func shopOnNetns() async throws {
        try await withNetnsCluster(agents: 2, serverArguments: ["--service-cidr", Self.serviceBlock],
                                   agentArguments: { ["--runtime", "netns", "--pod-cidr", "\(Self.podPrefix($0))0/24"] }) { cluster in
            try await cluster.apply(try shop(), name: "shop.yaml")
            var replicas = try await shopReady(cluster)

            // 1. Own addresses: distinct, in the node's pod CIDR, not its gateway; ports are the container ports.
            let addresses = replicas.compactMap { $0["ip"] as? String }
            #expect(addresses.count == replicas.count && Set(addresses).count == addresses.count, "\(addresses)")
            for item in replicas {
                let node = try #require(item["node"] as? String)
                let host = try #require(cluster.nodeHosts.first { cluster.nodeName($0) == node })
                let ip = try #require(item["ip"] as? String)
                #expect(ip.hasPrefix(Self.podPrefix(host)) && ip != "\(Self.podPrefix(host))1", "\(item["name"] ?? "") on \(node) at \(ip)")
                #expect((item["ports"] as? [String: Any])?["http"] as? Int == 8080, "\(item)")
            }
            let nodes = try await cluster.items("nodes")
            for node in nodes {
                let labels = (node["metadata"] as? [String: Any])?["labels"] as? [String: String]
                #expect(labels?["weft.io/netns"] == "true", "\(node)")
            }
            let described = try await cluster.cli(["describe", "node", cluster.nodeName(2)])
            #expect(described.stdout.contains("netns") && described.stdout.contains("\(Self.podPrefix(2))0/24"), "\(described.stdout)")

            // 2. From inside a frontend replica: its resolv.conf names the bridge, getaddrinfo("cart") gives the
            // VIP, and the VIP answers through cart and catalog (the frontend's identity passes the policy).
            let frontend = try #require(replicas.first { $0["deployment"] as? String == "frontend" })
            let frontendPID = try #require(frontend["pid"] as? Int)
            let resolv = try await inReplica(frontendPID, ["cat", "/etc/resolv.conf"])
            #expect(resolv.stdout.contains("search default.svc.weft.internal svc.weft.internal weft.internal"), "\(resolv)")
            #expect(resolv.stdout.contains("nameserver 10.244."), "\(resolv)")
            let lookup = try await inReplica(frontendPID, ["getent", "hosts", "cart"])
            let vip = try #require(lookup.stdout.split(separator: " ").first.map(String.init), "\(lookup)")
            #expect(vip.hasPrefix("10.96."), "cart resolved to \(lookup)")
            var last = ""
            try await eventually(timeout: .seconds(20), "the cart VIP answers from inside a frontend replica") {
                let answer = try await inReplica(frontendPID, ["curl", "-sS", "--max-time", "5", "http://cart/"])
                last = "\(answer)"
                return hops(answer.stdout).map(\.service) == ["cart", "catalog"]
            }
            // And the whole chain, by name from a host.
            let chain = try await cluster.run(on: 2, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://frontend.default.svc.weft.internal/"])
            #expect(hops(chain.stdout).map(\.service) == ["frontend", "cart", "catalog"], "\(chain) / \(last)")
            for (_, address) in hops(chain.stdout) {
                #expect(address.hasPrefix("10.244."), "a tier answered from \(address), not its pod address")
            }

            // An exec probe runs inside the replica's namespace: this one passes only where resolv.conf is the
            // replica's own (the host's names 127.0.0.1).
            try await cluster.apply("""
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: probed
                spec:
                  replicas: 1
                  template:
                    metadata:
                      labels:
                        app: probed
                    spec:
                      command: ["weft-demo"]
                      ports:
                        - name: http
                          containerPort: 9090
                      readinessProbe:
                        exec:
                          command: ["/bin/sh", "-c", "grep -q 'nameserver 10.244.' /etc/resolv.conf"]
                        periodSeconds: 1
                      terminationGracePeriodSeconds: 1
                """, name: "probed.yaml")
            try await eventually(timeout: .seconds(30), "the exec-probed replica Ready") {
                try await cluster.items("replicas").contains { $0["deployment"] as? String == "probed" && $0["ready"] as? Bool == true }
            }
            let probed = try #require(try await cluster.items("replicas").first { $0["deployment"] as? String == "probed" })
            #expect((probed["address"] as? String)?.hasSuffix(":9090") == true, "\(probed)")
            #expect(try await cluster.cli(["delete", "deployment", "probed"]).exit == .exited(0))

            // 3. Kill a cart replica's process: it comes back Ready at another address, DNS and the VIP follow.
            let cart = try #require(replicas.first { $0["deployment"] as? String == "cart" })
            let cartName = try #require(cart["name"] as? String)
            let oldIP = try #require(cart["ip"] as? String)
            let cartPID = try #require(cart["pid"] as? Int)
            kill(Int32(cartPID), SIGKILL)
            var restarted: [String: Any] = [:]
            try await eventually(timeout: .seconds(30), "\(cartName) Ready again at a new address") {
                let items = try await cluster.items("replicas")
                restarted = items.first { $0["name"] as? String == cartName } ?? [:]
                return restarted["ready"] as? Bool == true && (restarted["ip"] as? String).map { $0 != oldIP } == true
                    && (restarted["restarts"] as? Int ?? 0) >= 1
            }
            let newIP = try #require(restarted["ip"] as? String)
            print("netns runtime: \(cartName) restarted at \(newIP) (was \(oldIP))")
            replicas = try await shopReady(cluster)
            try await eventually(timeout: .seconds(20), "the restarted cart answers through the VIP by name") {
                let answer = try await inReplica(frontendPID, ["curl", "-sS", "--max-time", "5", "http://cart/"])
                return hops(answer.stdout).first.map { $0.service == "cart" && $0.address.hasPrefix(newIP + ":") } == true
            }
            let endpoints = try await cluster.cli(["describe", "service", "cart"])
            #expect(endpoints.stdout.contains(newIP) && !endpoints.stdout.contains(oldIP + " "), "\(endpoints.stdout)")

            // 4. The agent on host 3 crashes (SIGKILL, its replicas live on): the next one stops them, removes
            // their namespaces and veths, and runs its replicas again in new ones.
            let onHost3 = replicas.filter { $0["node"] as? String == cluster.nodeName(3) }
            let crashedIPs = Set(onHost3.compactMap { $0["ip"] as? String })
            let crashedPIDs = onHost3.compactMap { $0["pid"] as? Int }.map(Int32.init)
            #expect(!crashedPIDs.isEmpty, "spread put nothing on host3")
            let agent3 = try #require(cluster.agent(3))
            agent3.send(SIGKILL)
            _ = try await agent3.waitForExit(timeout: .seconds(30))  // its output pipes close once no child holds them
            let book = cluster.agentDirectory(3).appendingPathComponent("pod-network.json").path
            let recorded = try String(contentsOfFile: book, encoding: .utf8)
            for ip in crashedIPs { #expect(recorded.contains("\"\(ip)\""), "\(ip) not recorded in \(recorded)") }
            try await cluster.startAgent(3)
            try await eventually(timeout: .seconds(30), "the leftovers of the crashed agent are gone") { crashedPIDs.allSatisfy { !isAlive($0) } }
            // Until the new agent reports, the objects still show the old processes: wait for new ones.
            try await eventually(timeout: .seconds(30), "host3's replicas Ready in new processes") {
                let items = try await cluster.items("replicas").filter { $0["node"] as? String == cluster.nodeName(3) }
                return items.allSatisfy { item in
                    item["ready"] as? Bool == true && (item["pid"] as? Int).map { !crashedPIDs.contains(Int32($0)) } == true
                }
            }
            replicas = try await shopReady(cluster)
            let again = Set(replicas.filter { $0["node"] as? String == cluster.nodeName(3) }.compactMap { $0["ip"] as? String })
            #expect(again.isDisjoint(with: crashedIPs), "after the crash \(again), before \(crashedIPs)")
            let host3Links = try await links(cluster, 3)
            #expect(host3Links.filter { $0.hasPrefix("wv") }.count == again.count, "host3 interfaces: \(host3Links)")

            // 5. Stopping the agents removes every namespace, veth, bridge and resolv.conf they made.
            for host in cluster.nodeHosts {
                let bookPath = cluster.agentDirectory(host).appendingPathComponent("pod-network.json").path
                let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bookPath))) as? [String: Any]
                let sandboxes = ((state?["allocations"] as? [String: Any]) ?? [:]).values.compactMap { ($0 as? [String: Any])?["sandbox"] as? String }
                #expect(!sandboxes.isEmpty, "host\(host) recorded no sandbox")
                let agent = try #require(cluster.agent(host))
                await agent.terminate(gracePeriod: .seconds(20))
                let left = try await links(cluster, host)
                #expect(!left.contains { $0.hasPrefix("wv") || $0 == "weft0" }, "host\(host) kept \(left)")
                let remaining = sandboxes.filter {
                    FileManager.default.fileExists(atPath: "/run/netns/\($0)") || FileManager.default.fileExists(atPath: "/etc/netns/\($0)")
                }
                #expect(remaining.isEmpty, "host\(host) left \(remaining); its agent said:\n\(agent.lines(.stderr).suffix(30).joined(separator: "\n"))")
                let after = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bookPath))) as? [String: Any]
                #expect(((after?["allocations"] as? [String: Any]) ?? [:]).isEmpty, "host\(host)'s address book after the stop: \(after ?? [:])")
                let routes = try await cluster.run(on: host, NetnsSupport.ip!, ["route", "show", "table", "local"])
                #expect(!routes.stdout.contains("10.96.0.0/16"), "host\(host) kept the VIP route: \(routes.stdout)")
            }
        }
    }
}
