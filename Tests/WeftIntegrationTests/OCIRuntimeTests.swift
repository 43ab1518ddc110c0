import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What the oci runtime tests need beyond network-namespace hosts: runc.
enum OCISupport {
    static let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static let unavailableReason: String? = {
        if let reason = NetnsSupport.unavailableReason { return reason }
        if runc == nil { return "the oci runtime needs runc (apt-get install runc)" }
        return nil
    }()

    static var available: Bool { unavailableReason == nil }

    /// `Tests/oci/build-image.sh`: a root filesystem from programs and their libraries, and an OCI image layout of it.
    static let buildImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("oci/build-image.sh")

    static func script(_ arguments: [String]) async throws -> String {
        let child = ChildProcess(executable: URL(fileURLWithPath: "/bin/bash"), arguments: [buildImage.path] + arguments)
        try child.start()
        let exit = try await child.waitForExit(timeout: .seconds(120))
        guard exit == .exited(0) else {
            throw TestSupportError(description: "build-image.sh \(arguments.joined(separator: " ")) failed: \(child.lines(.stderr).joined(separator: "\n"))")
        }
        return child.lines(.stdout).joined(separator: "\n")
    }
}

/// The oci runtime on simulated hosts: the shop runs as runc containers — catalog and cart from an image
/// imported with `weft image import` (an OCI layout tar built here, no registry), the frontend from a
/// root filesystem directory — each in a network namespace of the netns driver with an IP of its own.
@Suite("The oci runtime (runc) on hosts in network namespaces", .serialized, .timeLimit(.minutes(6)),
       .enabled(if: OCISupport.available, Comment(rawValue: OCISupport.unavailableReason ?? "")))
struct OCIRuntimeTests {
    static let shopDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/shop")
    static let tiers = ["frontend": 3, "cart": 2, "catalog": 2]
    static func podPrefix(_ host: Int) -> String { "10.245.\(host)." }

    /// The shop with each tier on runtime oci: `image` for catalog and cart, `rootfs` for the frontend.
    private func shop(rootfs: String) throws -> String {
        try ["catalog", "cart", "frontend", "policy"].map { tier in
            let text = try String(contentsOf: Self.shopDirectory.appendingPathComponent("\(tier).yaml"), encoding: .utf8)
            let container = tier == "frontend"
                ? "      runtime: oci\n      rootfs: \(rootfs)\n      command: [\"/usr/local/bin/weft-demo\"]\n      securityContext: {runAsUser: 65534, runAsGroup: 65534}"
                : "      runtime: oci\n      image: shop/demo:1\n      resources:\n        limits:\n          cpu: 500m\n          memory: 256Mi"
            return text.replacingOccurrences(of: "      command: [\"weft-demo\"]", with: container)
                .replacingOccurrences(of: "      resources:\n        requests:\n          cpu: 100m\n          memory: 32Mi\n", with: "")
        }.joined(separator: "\n---\n")
    }

    private func hops(_ json: String) -> [(service: String, address: String)] {
        var result: [(String, String)] = []
        var object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        while let current = object {
            result.append((current["service"] as? String ?? "error", current["address"] as? String ?? ""))
            object = current["upstream"] as? [String: Any]
        }
        return result
    }

    private func shopReady(_ cluster: NetnsCluster) async throws -> [[String: Any]] {
        var ready: [[String: Any]] = []
        try await eventually(timeout: .seconds(90), "every shop tier Ready") {
            let items = try await cluster.items("replicas")
            ready = items.filter { $0["ready"] as? Bool == true }
            return Self.tiers.allSatisfy { tier, desired in
                ready.filter { $0["deployment"] as? String == tier }.count == desired && items.filter { $0["deployment"] as? String == tier }.count == desired
            }
        }
        return ready
    }

    /// Runs `command` (a host program) in the network namespace of the process `pid`.
    private func inNetwork(of pid: Int, _ command: [String]) async throws -> CommandResult {
        let child = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/nsenter"), arguments: ["-t", String(pid), "-n", "--"] + command)
        try child.start()
        let exit = try await child.waitForExit(timeout: .seconds(20))
        return CommandResult(exit: exit, stdout: child.lines(.stdout).joined(separator: "\n"), stderr: child.lines(.stderr).joined(separator: "\n"))
    }

    @Test("the shop as runc containers from an imported image and a rootfs: own IPs, cgroup limits, DNS names and VIPs from inside; a killed container comes back at another IP; a container past its memory limit is OOMKilled and restarted; a missing image keeps its replica Pending; nothing is left behind")
    func shopOnOCI() async throws {
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("weft-oci-\(getpid())")
        try? FileManager.default.removeItem(at: work)
        defer { try? FileManager.default.removeItem(at: work) }
        let rootfs = work.appendingPathComponent("rootfs").path
        _ = try await OCISupport.script(["rootfs", rootfs, try WeftBuild.executable("weft-demo").path, "/bin/sh=/bin/dash"])
        let layout = work.appendingPathComponent("layout").path
        let digest = try await OCISupport.script(["layout", layout, rootfs, "shop/demo:1", #"["/usr/local/bin/weft-demo"]"#])
        let weft = try WeftBuild.executable("weft").path

        try await withNetnsCluster(agents: 2, serverArguments: ["--service-cidr", "10.97.0.0/16"],
                                   agentArguments: { ["--runtime", "netns", "--pod-cidr", "\(Self.podPrefix($0))0/24"] }) { cluster in
            // 1. The image is imported on each node from the layout's tar; the digest is verified and recorded.
            for host in cluster.nodeHosts {
                let result = try await cluster.run(on: host, weft, ["image", "import", layout + ".tar", "--data-dir", cluster.agentDirectory(host).path])
                #expect(result.exit == .exited(0) && result.stdout.contains("imported shop/demo:1 \(digest)"), "\(result)")
            }
            let listed = try await cluster.run(on: 2, weft, ["image", "list", "--data-dir", cluster.agentDirectory(2).path])
            #expect(listed.stdout.contains("shop/demo:1") && listed.stdout.contains(String(digest.prefix(19))), "\(listed)")

            try await cluster.apply(try shop(rootfs: rootfs), name: "shop.yaml")
            let replicas = try await shopReady(cluster)
            let addresses = replicas.compactMap { $0["ip"] as? String }
            #expect(addresses.count == replicas.count && Set(addresses).count == addresses.count, "\(addresses)")
            for item in replicas {
                let ip = try #require(item["ip"] as? String)
                #expect(ip.hasPrefix("10.245."), "\(item["name"] ?? "") at \(ip)")
                let pid = try #require(item["pid"] as? Int)
                // The pid is the container's process: in a cgroup below the replica's, with the image's root.
                let cgroups = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
                #expect(cgroups.contains("/weft/\(item["node"] as? String ?? "")/"), "\(item["name"] ?? ""): \(cgroups)")
                let motd = try? String(contentsOfFile: "/proc/\(pid)/root/etc/motd", encoding: .utf8)
                let obsolete = FileManager.default.fileExists(atPath: "/proc/\(pid)/root/etc/obsolete")
                let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map { String($0.split(separator: "\t")[1]) }
                if item["deployment"] as? String == "frontend" {
                    #expect(motd == nil && obsolete, "the frontend runs from the rootfs directory")
                    #expect(uid == "65534", "securityContext.runAsUser: \(uid ?? "?")")
                } else {
                    #expect(motd == "built by build-image.sh\n" && !obsolete, "the image's second layer applies its file and its whiteout")
                    #expect(uid == "0", "the image names no user: root, got \(uid ?? "?")")
                    // resources.limits: cpu 500m is a 50 ms quota per 100 ms; memory 256Mi on the replica's cgroup.
                    let line = try #require(cgroups.split(separator: "\n").first { $0.contains(":cpu,") || $0.hasSuffix(":cpu") || $0.contains(":cpu:") })
                    let path = String(line.split(separator: ":", maxSplits: 2)[2])
                    let quota = try? String(contentsOfFile: "/sys/fs/cgroup/cpu\(path)/cpu.cfs_quota_us", encoding: .utf8)
                    #expect(quota?.trimmingCharacters(in: .whitespacesAndNewlines) == "50000", "cpu quota of \(path): \(quota ?? "unreadable")")
                    let replicaCgroup = (path as NSString).deletingLastPathComponent
                    let memory = try? String(contentsOfFile: "/sys/fs/cgroup/memory\(replicaCgroup)/memory.limit_in_bytes", encoding: .utf8)
                    #expect(memory?.trimmingCharacters(in: .whitespacesAndNewlines) == String(256 << 20), "memory limit of \(replicaCgroup): \(memory ?? "unreadable")")
                }
                let resolv = try String(contentsOfFile: "/proc/\(pid)/root/etc/resolv.conf", encoding: .utf8)
                #expect(resolv.contains("nameserver 10.245.") && resolv.contains("search default.svc.weft.internal"), "\(resolv)")
            }

            // 2. The chain by name from a host: frontend → cart → catalog, each container resolving the next
            // tier's name through its own resolv.conf and reaching its VIP.
            var chain = CommandResult(exit: .exited(1), stdout: "", stderr: "")
            try await eventually(timeout: .seconds(30), "the shop chain answers through the containers") {
                chain = try await cluster.run(on: 2, "/usr/bin/curl", ["-sS", "--max-time", "5", "http://frontend.default.svc.weft.internal/"])
                return hops(chain.stdout).map(\.service) == ["frontend", "cart", "catalog"]
            }
            for (_, address) in hops(chain.stdout) { #expect(address.hasPrefix("10.245."), "answered from \(address): \(chain)") }

            // 3. Kill a cart container's process: runc reports it, the replica restarts at another address.
            let cart = try #require(replicas.first { $0["deployment"] as? String == "cart" })
            let cartName = try #require(cart["name"] as? String)
            let oldIP = try #require(cart["ip"] as? String)
            kill(Int32(try #require(cart["pid"] as? Int)), SIGKILL)
            var restarted: [String: Any] = [:]
            try await eventually(timeout: .seconds(45), "\(cartName) Ready again at a new address") {
                restarted = try await cluster.items("replicas").first { $0["name"] as? String == cartName } ?? [:]
                return restarted["ready"] as? Bool == true && (restarted["ip"] as? String).map { $0 != oldIP } == true
            }
            let newIP = try #require(restarted["ip"] as? String)
            let frontendPID = try #require(replicas.first { $0["deployment"] as? String == "frontend" }?["pid"] as? Int)
            let clusterIP = try #require(try await cluster.items("services").first { $0["name"] as? String == "cart" }?["clusterIP"] as? String)
            try await eventually(timeout: .seconds(30), "the restarted cart answers through the VIP from inside a frontend container") {
                let answer = try await inNetwork(of: frontendPID, ["curl", "-sS", "--max-time", "5", "http://\(clusterIP)/"])
                return hops(answer.stdout).first.map { $0.service == "cart" && $0.address.hasPrefix(newIP + ":") } == true
            }
            let described = try await cluster.cli(["describe", "replica", cartName])
            #expect(described.stdout.contains("Last Exit Status:") && described.stdout.contains("SIGKILL") && described.stdout.contains("Image:"), "\(described.stdout)")

            // 4. A container that allocates past its memory limit is OOM-killed, says so, and is restarted.
            try await cluster.apply("""
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: hungry
                spec:
                  template:
                    metadata:
                      labels:
                        app: hungry
                    spec:
                      runtime: oci
                      rootfs: \(rootfs)
                      command: ["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; s=0123456789abcdef; while true; do s=\\"$s$s\\"; done"]
                      resources:
                        limits:
                          memory: 24Mi
                      terminationGracePeriodSeconds: 1
                ---
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: unimported
                spec:
                  template:
                    metadata:
                      labels:
                        app: unimported
                    spec:
                      runtime: oci
                      image: shop/missing:2
                ---
                apiVersion: weft/v1
                kind: ConfigMap
                metadata:
                  name: probed-config
                data:
                  greeting: hello from a config volume
                ---
                apiVersion: weft/v1
                kind: Deployment
                metadata:
                  name: probed
                spec:
                  template:
                    metadata:
                      labels:
                        app: probed
                    spec:
                      runtime: oci
                      image: shop/demo:1
                      volumes:
                        - name: settings
                          configMap: {name: probed-config}
                      volumeMounts:
                        - {name: settings, mountPath: /etc/probed}
                      readinessProbe:
                        exec:
                          command: ["/bin/sh", "-c", "test -f /etc/motd && test ! -e /etc/obsolete && { read -r line < /etc/probed/greeting; [ \\"$line\\" = 'hello from a config volume' ]; } && [ \\"$WEFT_VOLUME_SETTINGS\\" = /etc/probed ]"]
                        periodSeconds: 1
                      terminationGracePeriodSeconds: 1
                """, name: "hungry.yaml")
            // An exec probe runs inside the container (runc exec): it sees the image's files and the
            // ConfigMap volume bind-mounted at its mountPath.
            try await eventually(timeout: .seconds(30), "the exec-probed container Ready") {
                try await cluster.items("replicas").contains { $0["deployment"] as? String == "probed" && $0["ready"] as? Bool == true }
            }
            var hungry: [String: Any] = [:]
            try await eventually(timeout: .seconds(60), "the hungry replica OOMKilled and restarted") {
                hungry = try await cluster.items("replicas").first { $0["deployment"] as? String == "hungry" } ?? [:]
                return hungry["lastExitReason"] as? String == "OOMKilled" && (hungry["restarts"] as? Int ?? 0) >= 1
            }
            let hungryName = try #require(hungry["name"] as? String)
            let describedHungry = try await cluster.cli(["describe", "replica", hungryName])
            #expect(describedHungry.stdout.contains("OOMKilled") && describedHungry.stdout.contains("SIGKILL"), "\(describedHungry.stdout)")
            let hungryDeployment = try await cluster.cli(["describe", "deployment", "hungry"])
            #expect(hungryDeployment.stdout.contains("(OOMKilled)"), "\(hungryDeployment.stdout)")
            print("oci runtime: \(hungryName) \(hungry["lastExitReason"] ?? "") after \(hungry["restarts"] ?? 0) restarts; cart \(cartName) \(oldIP) → \(newIP)")

            // 5. An image the node does not have: Pending with what to do, not a crash loop.
            try await eventually(timeout: .seconds(20), "the replica of a missing image Pending with the reason") {
                let item = try await cluster.items("replicas").first { $0["deployment"] as? String == "unimported" } ?? [:]
                let message = item["message"] as? String ?? ""
                return item["phase"] as? String == "Pending" && message.contains("image \"shop/missing:2\" not found on node host")
                    && message.contains("weft image import") && (item["restarts"] as? Int ?? 0) == 0
            }
            #expect(try await cluster.cli(["delete", "deployment", "hungry"]).exit == .exited(0))

            // 6. The agent on host 3 crashes (SIGKILL; runc and its containers live on): the next one deletes
            // the containers it finds in its runc root before running its replicas again in new ones.
            let onHost3 = try await cluster.items("replicas").filter { $0["node"] as? String == cluster.nodeName(3) && $0["ready"] as? Bool == true }
            let crashedPIDs = onHost3.compactMap { $0["pid"] as? Int }.map(Int32.init)
            #expect(!crashedPIDs.isEmpty, "nothing ran on host3")
            let agent3 = try #require(cluster.agent(3))
            agent3.send(SIGKILL)
            _ = try await agent3.waitForExit(timeout: .seconds(10))
            #expect(crashedPIDs.allSatisfy { isAlive($0) }, "containers outlive their agent")
            try await cluster.startAgent(3)
            try await eventually(timeout: .seconds(30), "the crashed agent's containers are gone") { crashedPIDs.allSatisfy { !isAlive($0) } }
            try await eventually(timeout: .seconds(45), "host3's shop replicas Ready in new containers") {
                let items = try await cluster.items("replicas").filter { $0["node"] as? String == cluster.nodeName(3) && Self.tiers[$0["deployment"] as? String ?? ""] != nil }
                return !items.isEmpty && items.allSatisfy { item in
                    item["ready"] as? Bool == true && (item["pid"] as? Int).map { !crashedPIDs.contains(Int32($0)) } == true
                }
            }

            // 7. Stopping the agents deletes every container, bundle and cgroup they made.
            for host in cluster.nodeHosts {
                let agent = try #require(cluster.agent(host))
                agent.send(SIGTERM)
                // It stops each container (SIGTERM, then runc delete): slow on a loaded machine.
                _ = try await agent.waitForExit(timeout: .seconds(60))
                let runcRoot = cluster.agentDirectory(host).appendingPathComponent("oci/runc").path
                let left = try await cluster.run(on: host, OCISupport.runc!, ["--root", runcRoot, "list", "-q"])
                #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "containers left on host\(host): \(left)")
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/weft/\(cluster.nodeName(host))"), "host\(host)'s cgroups remain")
            }
        }
    }
}
