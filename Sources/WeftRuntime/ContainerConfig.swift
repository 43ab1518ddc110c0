import Foundation
import WeftCore

/// A host directory or file made visible inside a container (configs, secrets, workload certificates).
public struct ContainerMount: Sendable, Hashable {
    public var hostPath: String
    public var containerPath: String
    public var readOnly: Bool

    public init(hostPath: String, containerPath: String, readOnly: Bool = true) {
        self.hostPath = hostPath
        self.containerPath = containerPath
        self.readOnly = readOnly
    }
}

/// Everything the oci driver puts in one container's runc `config.json` (OCI runtime spec 1.0).
public struct ContainerConfig: Sendable, Hashable {
    /// `process.args`: the program and its arguments, resolved from the template and the image.
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    public var user: UInt32
    public var group: UInt32
    public var hostname: String
    /// The root filesystem directory, shared by every container of an image: mounted read-only.
    public var rootfs: String
    /// `/run/netns/<name>`: the replica's network namespace, made by the netns driver.
    public var networkNamespace: String?
    /// The namespace's resolv.conf, mounted over `/etc/resolv.conf`.
    public var resolvConf: String?
    public var mounts: [ContainerMount]
    /// `resources.limits.cpu` in millicores: a CFS quota per 100 ms period.
    public var cpuMillicores: Int?
    /// The cgroup runc makes for the container, below the replica's cgroup that holds the memory limit.
    public var cgroupsPath: String

    public init(arguments: [String], environment: [String: String] = [:], workingDirectory: String = "/", user: UInt32 = 0,
                group: UInt32 = 0, hostname: String, rootfs: String, networkNamespace: String? = nil, resolvConf: String? = nil,
                mounts: [ContainerMount] = [], cpuMillicores: Int? = nil, cgroupsPath: String) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.group = group
        self.hostname = hostname
        self.rootfs = rootfs
        self.networkNamespace = networkNamespace
        self.resolvConf = resolvConf
        self.mounts = mounts
        self.cpuMillicores = cpuMillicores
        self.cgroupsPath = cgroupsPath
    }

    /// The CFS period the CPU limit is expressed in.
    public static let cpuPeriod = 100_000

    /// Docker's default capability set: enough for a root process to run a server, no administration.
    static let capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
                               "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

    /// The `config.json` document.
    public func document() -> OCIRuntimeSpec {
        let capabilities = user != 0 ? [] : Self.capabilities
        let process = OCIRuntimeSpec.Process(
            user: .init(uid: user, gid: group), args: arguments,
            env: environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }, cwd: workingDirectory,
            capabilities: .init(bounding: capabilities, effective: capabilities, permitted: capabilities))
        var mounts: [OCIRuntimeSpec.Mount] = [
            .init(destination: "/proc", type: "proc", source: "proc"),
            .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            .init(destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            .init(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            // The root filesystem is shared and read-only: scratch space is the container's own.
            .init(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]),
            .init(destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"]),
        ]
        if let resolvConf {
            mounts.append(Self.bind(ContainerMount(hostPath: resolvConf, containerPath: "/etc/resolv.conf")))
        }
        mounts += self.mounts.map(Self.bind)
        var namespaces: [OCIRuntimeSpec.Namespace] = ["pid", "ipc", "uts", "mount"].map { .init(type: $0) }
        namespaces.append(.init(type: "network", path: networkNamespace))
        var resources = OCIRuntimeSpec.Resources(devices: [.init(allow: false, access: "rwm")])
        if let cpuMillicores {
            // At least 1 ms per period: the kernel refuses a smaller quota.
            resources.cpu = .init(quota: Int64(max(1000, cpuMillicores * Self.cpuPeriod / 1000)), period: UInt64(Self.cpuPeriod))
        }
        let linux = OCIRuntimeSpec.Linux(
            namespaces: namespaces, cgroupsPath: cgroupsPath, resources: resources,
            maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        return OCIRuntimeSpec(process: process, root: .init(path: rootfs, readonly: true), hostname: hostname, mounts: mounts, linux: linux)
    }

    /// The `config.json` bytes.
    public func data() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(document())
    }

    private static func bind(_ mount: ContainerMount) -> OCIRuntimeSpec.Mount {
        .init(destination: mount.containerPath, type: "bind", source: mount.hostPath,
              options: ["rbind", "nosuid", "nodev", mount.readOnly ? "ro" : "rw"])
    }
}

/// The part of the OCI runtime spec (`config.json`) the oci driver writes.
public struct OCIRuntimeSpec: Codable, Sendable, Hashable {
    public var ociVersion = "1.0.2"
    public var process: Process
    public var root: Root
    public var hostname: String
    public var mounts: [Mount]
    public var linux: Linux

    public struct Process: Codable, Sendable, Hashable {
        public var terminal = false
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities
        // No rlimits: the container keeps the agent's (raising a hard limit needs CAP_SYS_RESOURCE).
        public var noNewPrivileges = true
    }

    public struct User: Codable, Sendable, Hashable {
        public var uid: UInt32
        public var gid: UInt32
    }

    public struct Capabilities: Codable, Sendable, Hashable {
        public var bounding: [String]
        public var effective: [String]
        public var permitted: [String]
    }

    public struct Root: Codable, Sendable, Hashable {
        public var path: String
        public var readonly: Bool
    }

    public struct Mount: Codable, Sendable, Hashable {
        public var destination: String
        public var type: String
        public var source: String
        public var options: [String]?

        init(destination: String, type: String, source: String, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }

    public struct Namespace: Codable, Sendable, Hashable {
        public var type: String
        public var path: String?

        init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    public struct Linux: Codable, Sendable, Hashable {
        public var namespaces: [Namespace]
        public var cgroupsPath: String
        public var resources: Resources
        public var maskedPaths: [String]
        public var readonlyPaths: [String]
    }

    public struct Resources: Codable, Sendable, Hashable {
        public var devices: [DeviceRule]
        public var cpu: CPU?

        init(devices: [DeviceRule], cpu: CPU? = nil) {
            self.devices = devices
            self.cpu = cpu
        }
    }

    public struct DeviceRule: Codable, Sendable, Hashable {
        public var allow: Bool
        public var access: String
    }

    public struct CPU: Codable, Sendable, Hashable {
        public var quota: Int64
        public var period: UInt64
    }
}
