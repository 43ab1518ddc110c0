#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The cgroup layout of the machine: cgroup v2 (one unified hierarchy at /sys/fs/cgroup) or v1 (one
/// hierarchy per controller, /sys/fs/cgroup/<controller>).
public enum CgroupVersion: Sendable, Hashable {
    case v1
    case v2

    /// The layout of this machine, as runc sees it: v2 when /sys/fs/cgroup itself is a cgroup2 mount.
    public static func current(root: String = "/sys/fs/cgroup") -> CgroupVersion {
        access("\(root)/cgroup.controllers", F_OK) == 0 ? .v2 : .v1
    }
}

/// Whether the oci driver can run here, and why not: root, runc, the netns driver (every container gets
/// its network namespace from it) and the cpu and memory cgroup controllers.
public enum OCIDriverSupport {
    /// Where runc is looked for, in order (Debian's package installs /usr/sbin/runc).
    public static let runcCandidates = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc"]

    /// The first executable runc of ``runcCandidates``, or nil.
    public static func findRunc() -> String? {
        runcCandidates.first { access($0, X_OK) == 0 }
    }

    /// The controllers the driver needs that the machine lacks (empty when it has both).
    public static func missingControllers(version: CgroupVersion, root: String = "/sys/fs/cgroup") -> [String] {
        switch version {
        case .v2:
            let available = readSmallFile("\(root)/cgroup.controllers").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let names = Set(available.split(whereSeparator: \.isWhitespace).map(String.init))
            return ["cpu", "memory"].filter { !names.contains($0) }
        case .v1:
            return [("cpu", "cpu.cfs_quota_us"), ("memory", "memory.limit_in_bytes")].filter { controller, file in
                access("\(root)/\(controller)/\(file)", F_OK) != 0
            }.map(\.0)
        }
    }

    /// Why the oci driver cannot run for a process with effective user `uid`, runc at `runcPath`, the netns
    /// driver's own reason `netnsUnavailable` and the cgroup controllers `missingControllers`; nil when it can.
    public static func unavailableReason(uid: UInt32, runcPath: String?, netnsUnavailable: String?, missingControllers: [String]) -> String? {
        if uid != 0 {
            return "the oci runtime needs root (runc creates namespaces and cgroups); run weft agent as root, or set runtime: process"
        }
        if runcPath == nil {
            return "the oci runtime needs runc, found in none of \(runcCandidates.joined(separator: ", ")); install it (apt-get install runc), or set runtime: netns"
        }
        if let netnsUnavailable {
            return "the oci runtime puts each container in a network namespace of the netns driver, which cannot run: \(netnsUnavailable)"
        }
        if !missingControllers.isEmpty {
            return "the oci runtime needs the \(missingControllers.joined(separator: " and ")) cgroup controller\(missingControllers.count > 1 ? "s" : ""), which this machine does not offer (see /sys/fs/cgroup); enable it, or set runtime: netns"
        }
        return nil
    }
}

/// The cgroup of one replica, `/weft/<node>/<replica>`, which outlives its containers: runc makes each
/// container's cgroup below it. It holds the memory limit, so an OOM kill is seen here after runc has
/// removed the container's own cgroup — with cgroup v1 through an eventfd on `memory.oom_control` (the
/// kernel counts `oom_kill` only in the killed task's cgroup there), with v2 in the hierarchical
/// `memory.events`.
public final class ReplicaCgroup: Sendable {
    /// The path below each hierarchy's root, e.g. `/weft/node-1/default_cart-5d8f`.
    public let path: String
    public let version: CgroupVersion
    private let root: String
    /// v1: the eventfd registered for OOM notifications of the memory hierarchy; -1 for v2.
    private let oomEvents: Int32
    private let baselineKills: UInt64

    /// Creates (or reuses) the cgroup and sets `memoryLimit` bytes when given. Throws a ``RuntimeError``
    /// naming the file that could not be written.
    public init(path: String, memoryLimit: Int64?, version: CgroupVersion = .current(), root: String = "/sys/fs/cgroup") throws {
        self.path = path
        self.version = version
        self.root = root
        let memoryDirectory = version == .v2 ? root + path : "\(root)/memory\(path)"
        do {
            try FileManager.default.createDirectory(atPath: memoryDirectory, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError(code: .container, message: "cannot create the replica's cgroup \(memoryDirectory): \(error)")
        }
        switch version {
        case .v2:
            // Controllers must be enabled in every ancestor's subtree_control for the child to have them.
            var ancestor = root
            for component in path.split(separator: "/") {
                try? Self.write("+cpu +memory", to: "\(ancestor)/cgroup.subtree_control")
                ancestor += "/\(component)"
            }
            try? Self.write("+cpu +memory", to: "\(memoryDirectory)/cgroup.subtree_control")
            if let memoryLimit { try Self.write(String(memoryLimit), to: "\(memoryDirectory)/memory.max") }
            oomEvents = -1
            baselineKills = Self.counter("oom_kill", in: "\(memoryDirectory)/memory.events") ?? 0
        case .v1:
            if let memoryLimit {
                try Self.write(String(memoryLimit), to: "\(memoryDirectory)/memory.limit_in_bytes")
                // Without swap accounting the file is absent; with it, swap must not stretch the limit.
                if access("\(memoryDirectory)/memory.memsw.limit_in_bytes", F_OK) == 0 {
                    try? Self.write(String(memoryLimit), to: "\(memoryDirectory)/memory.memsw.limit_in_bytes")
                }
            }
            oomEvents = try Self.registerOOMEvents(directory: memoryDirectory)
            baselineKills = 0
        }
    }

    deinit {
        if oomEvents >= 0 { close(oomEvents) }
    }

    /// The memory hierarchy's directory of this cgroup.
    public var memoryDirectory: String { version == .v2 ? root + path : "\(root)/memory\(path)" }

    /// The OOM kills in this cgroup since it was opened, or since the previous call (v1 consumes the
    /// eventfd's count). A container that ended with a higher count than at its start was OOM-killed.
    public func takeOOMKills() -> UInt64 {
        switch version {
        case .v2:
            let now = Self.counter("oom_kill", in: "\(memoryDirectory)/memory.events") ?? 0
            return now >= baselineKills ? now - baselineKills : 0
        case .v1:
            var count: UInt64 = 0
            let n = read(oomEvents, &count, 8)
            return n == 8 ? count : 0
        }
    }

    /// Removes the cgroup (and any empty container cgroup left below it) from every hierarchy; what
    /// still holds processes stays. Returns the directories that could not be removed.
    @discardableResult
    public func remove() -> [String] {
        Self.remove(path: path, version: version, root: root)
    }

    /// Removes `path` and the empty directories below it from every hierarchy of `root`.
    @discardableResult
    public static func remove(path: String, version: CgroupVersion = .current(), root: String = "/sys/fs/cgroup", onlyIfEmpty: Bool = false) -> [String] {
        let bases: [String]
        if version == .v2 {
            bases = [root]
        } else {
            let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            bases = hierarchies.sorted().map { "\(root)/\($0)" }
        }
        var failed: [String] = []
        for base in bases {
            let top = base + path
            guard access(top, F_OK) == 0 else { continue }
            // Deepest first: a cgroup directory can only be removed once it has no children.
            let children = (FileManager.default.subpaths(atPath: top) ?? []).filter { child in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: "\(top)/\(child)", isDirectory: &isDirectory) && isDirectory.boolValue
            }
            if onlyIfEmpty && !children.isEmpty { continue }
            for child in children.sorted(by: { $0.count > $1.count }) { rmdir("\(top)/\(child)") }
            if rmdir(top) != 0 && errno != ENOENT { failed.append(top) }
        }
        return failed
    }

    /// Registers an eventfd for OOM notifications of the v1 memory cgroup `directory`.
    private static func registerOOMEvents(directory: String) throws -> Int32 {
        let events = GNU.eventfd?(0, O_NONBLOCK | O_CLOEXEC) ?? -1
        guard events >= 0 else {
            throw RuntimeError(code: .container, message: "cannot create an eventfd for OOM notifications: \(String(cString: strerror(errno)))")
        }
        let control = open("\(directory)/memory.oom_control", O_RDONLY | O_CLOEXEC)
        guard control >= 0 else {
            close(events)
            throw RuntimeError(code: .container, message: "cannot open \(directory)/memory.oom_control: \(String(cString: strerror(errno)))")
        }
        // The kernel keeps its own reference to memory.oom_control once registered.
        defer { close(control) }
        do {
            try write("\(events) \(control)", to: "\(directory)/cgroup.event_control")
        } catch {
            close(events)
            throw error
        }
        return events
    }

    private static func write(_ text: String, to file: String) throws {
        let fd = open(file, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RuntimeError(code: .container, message: "cannot open \(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw RuntimeError(code: .container, message: "cannot write \"\(text)\" to \(file): \(String(cString: strerror(errno)))")
        }
    }

    /// The value of `name` in a flat-keyed cgroup file such as memory.events.
    static func counter(_ name: String, in file: String) -> UInt64? {
        guard let bytes = readSmallFile(file) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == name { return UInt64(parts[1]) }
        }
        return nil
    }
}
