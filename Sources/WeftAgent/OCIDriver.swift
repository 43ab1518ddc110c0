import Foundation
import Logging
import WeftCore
import WeftRuntime

/// The oci driver of a node: runs each replica incarnation as a runc container whose network namespace is
/// the replica's netns sandbox. Its state lives in the agent's state directory: `oci/runc` (runc's
/// `--root`, so every container listed there is this agent's), `oci/bundles/<id>` (config.json per
/// replica) and `images/` (the image store). Each replica has a cgroup `/weft/<node>/<id>` holding its
/// memory limit; runc makes the container's cgroup below it.
final class OCIDriver: Sendable {
    let runcPath: String
    let images: ImageStore
    let cgroupVersion: CgroupVersion
    private let runc: ToolCommand
    private let runcRoot: String
    private let bundles: String
    private let nodeName: String
    private let logger: Logger

    init(runcPath: String, stateDirectory: String, nodeName: String, logger: Logger) throws {
        self.runcPath = runcPath
        self.runc = ToolCommand(path: runcPath, code: .container, logger: logger)
        let oci = (stateDirectory as NSString).appendingPathComponent("oci")
        self.runcRoot = (oci as NSString).appendingPathComponent("runc")
        self.bundles = (oci as NSString).appendingPathComponent("bundles")
        self.images = ImageStore(directory: AgentConfiguration.imageDirectory(stateDirectory: stateDirectory), logger: logger)
        self.cgroupVersion = .current()
        self.nodeName = nodeName
        self.logger = logger
        for directory in [runcRoot, bundles] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    /// The cgroup of this node's replicas, below which each replica's is made.
    var cgroupParent: String { "/weft/\(Self.safe(nodeName))" }

    /// The container id of replica `namespace/name`: unique within this agent's runc root.
    func containerID(namespace: String, name: String) -> String { Self.safe("\(namespace)_\(name)") }

    func bundle(_ id: String) -> String { (bundles as NSString).appendingPathComponent(id) }

    /// The replica's cgroup path.
    func cgroupPath(_ id: String) -> String { "\(cgroupParent)/\(id)" }

    /// Kills and deletes every container a previous agent left in this agent's runc root, its bundles and
    /// the cgroups of this node. Run before any replica starts (after the process ledger stopped the runc
    /// processes it knew).
    func removeLeftovers() async {
        let listed = (try? await runc.run(["--root", runcRoot, "list", "-q"])) ?? ""
        for id in listed.split(whereSeparator: \.isNewline).map(String.init) where !id.isEmpty {
            await delete(id)
            logger.info("removed a container left by a previous agent", metadata: ["container": "\(id)"])
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: bundles)) ?? [] {
            try? FileManager.default.removeItem(atPath: bundle(entry))
        }
        let failed = ReplicaCgroup.remove(path: cgroupParent, version: cgroupVersion)
        if !failed.isEmpty {
            logger.warning("cannot remove cgroups left by a previous agent", metadata: ["cgroups": "\(failed)"])
        }
    }

    /// Removes this node's cgroup, and `/weft` when no other node's remains (agent shutdown, after every
    /// replica stopped). A cgroup whose last task is still exiting cannot be removed yet (EBUSY): tried
    /// again for up to 5 s.
    func tearDownNode() async {
        var failed = ReplicaCgroup.remove(path: cgroupParent, version: cgroupVersion)
        let deadline = ContinuousClock.now + .seconds(5)
        while !failed.isEmpty, ContinuousClock.now < deadline {
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                usleep(50_000)  // shutting down in a cancelled task: still wait, never spin
            }
            failed = ReplicaCgroup.remove(path: cgroupParent, version: cgroupVersion)
        }
        if !failed.isEmpty {
            logger.warning("cannot remove the node's cgroups", metadata: ["cgroups": "\(failed)"])
        }
        _ = ReplicaCgroup.remove(path: "/weft", version: cgroupVersion, onlyIfEmpty: true)
    }

    /// The process that runs container `id` from `bundle` in the foreground: its output is the
    /// container's, its exit status the container's (128 + n for signal n), and SIGTERM is forwarded.
    func runSpec(id: String) -> ProcessSpec {
        ProcessSpec(executable: runcPath, arguments: ["--root", runcRoot, "run", "--bundle", bundle(id), "--pid-file", pidFile(id), id],
                    environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// The command of an exec probe inside container `id`.
    func execCommand(id: String, _ command: [String]) -> [String] {
        [runcPath, "--root", runcRoot, "exec", id] + command
    }

    /// Writes the bundle of container `id` (replacing a previous one) after deleting any container left
    /// with that id.
    func writeBundle(id: String, config: ContainerConfig) async throws {
        await delete(id)
        let directory = bundle(id)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: pidFile(id))
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.createFile(atPath: path, contents: try config.data(), attributes: [.posixPermissions: 0o600]) else {
            throw RuntimeError(code: .container, message: "cannot write \(path)")
        }
    }

    /// The host pid of container `id`'s process, once runc has written it (nil after `timeout`).
    func containerPID(id: String, timeout: Duration = .seconds(5)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: pidFile(id), encoding: .utf8), let pid = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Kills container `id` if it still runs and deletes it; nothing when it is gone already.
    func delete(_ id: String) async {
        _ = try? await runc.run(["--root", runcRoot, "delete", "--force", id], timeout: .seconds(20))
    }

    /// Deletes container `id`, its bundle and the replica's cgroup (the replica stops for good).
    func remove(_ id: String, cgroup: ReplicaCgroup?) async {
        await delete(id)
        try? FileManager.default.removeItem(atPath: bundle(id))
        let failed = cgroup?.remove() ?? ReplicaCgroup.remove(path: cgroupPath(id), version: cgroupVersion)
        if !failed.isEmpty {
            logger.warning("cannot remove a replica's cgroup", metadata: ["container": "\(id)", "cgroups": "\(failed)"])
        }
    }

    private func pidFile(_ id: String) -> String { (bundle(id) as NSString).appendingPathComponent("pid") }

    /// Letters, digits, `_`, `-` and `.` only: runc ids and cgroup names.
    static func safe(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) ? $0 : "_" })
    }
}
