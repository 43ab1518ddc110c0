#if canImport(Glibc)
import Glibc
#endif

/// What to run for a replica: executable, arguments, the exact environment and the working directory.
public struct ProcessSpec: Sendable, Hashable {
    /// An absolute or relative path, or a bare name looked up in the `PATH` of `environment`
    /// (falling back to the agent's own `PATH` when the environment has none).
    public var executable: String
    /// The arguments after `argv[0]`; `argv[0]` is `executable` as given.
    public var arguments: [String]
    /// The complete environment of the child; nothing is inherited from the agent.
    public var environment: [String: String]
    /// The directory the child starts in, or `nil` for the agent's current directory.
    public var workingDirectory: String?

    /// Creates a process specification; the environment is passed verbatim to the child.
    public init(
        executable: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workingDirectory: String? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}

/// How a process ended: with an exit code or killed by a signal.
public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    /// The process called `exit` with this code; -1 means the status was lost because something
    /// else in the agent reaped the process (for example with SIGCHLD ignored).
    case exited(Int32)
    /// The process was terminated by this signal number.
    case signaled(Int32)

    /// Decodes a `waitpid` status word (the `WIFEXITED`/`WTERMSIG` macros are not importable).
    init(waitStatus status: Int32) {
        let low = status & 0x7f
        if low == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(low)
        }
    }

    /// `true` when the process exited with code 0.
    public var isSuccess: Bool { self == .exited(0) }

    /// "exited with code 3" or "killed by signal 9 (SIGKILL)".
    public var description: String {
        switch self {
        case .exited(let code):
            return "exited with code \(code)"
        case .signaled(let signal):
            if let name = signalNames[signal] { return "killed by signal \(signal) (\(name))" }
            return "killed by signal \(signal)"
        }
    }
}

private let signalNames: [Int32: String] = [
    SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
    SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
    SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2",
]

/// Identifies one incarnation of a process: its pid plus its start time, which together survive pid reuse.
public struct ProcessIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The process id, which is also its process group and session id (replicas run in their own session).
    public var pid: Int32
    /// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
    public var startTime: UInt64

    /// Creates an identity from a pid and the start time read from `/proc/<pid>/stat`.
    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// Reads the identity of a running (or not yet reaped) process, or `nil` if it does not exist.
    public static func current(pid: Int32) -> ProcessIdentity? {
        guard let stat = ProcStat.read(pid: pid) else { return nil }
        return ProcessIdentity(pid: pid, startTime: stat.startTime)
    }

    /// "pid 1234 (start 98765)".
    public var description: String { "pid \(pid) (start \(startTime))" }
}

/// The fields of `/proc/<pid>/stat` the runtime needs.
struct ProcStat: Sendable, Hashable {
    /// Field 3: R, S, D, Z, T, ...
    var state: Character
    /// Field 5: the process group id.
    var processGroup: Int32
    /// Field 6: the session id.
    var session: Int32
    /// Field 22: start time in clock ticks after boot.
    var startTime: UInt64

    static func read(pid: Int32) -> ProcStat? {
        guard let bytes = readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parse(bytes)
    }

    /// Parses the stat line; the command name (field 2) may contain spaces and parentheses,
    /// so fields are counted from the last `)`.
    static func parse(_ bytes: [UInt8]) -> ProcStat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let rest = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        // rest[0] is field 3, so field n is rest[n - 3].
        guard rest.count >= 20,
              let stateByte = rest[0].first,
              let pgrp = Int32(String(decoding: rest[2], as: UTF8.self)),
              let sid = Int32(String(decoding: rest[3], as: UTF8.self)),
              let start = UInt64(String(decoding: rest[19], as: UTF8.self))
        else { return nil }
        return ProcStat(state: Character(UnicodeScalar(stateByte)), processGroup: pgrp, session: sid, startTime: start)
    }
}

/// Reads a small file (such as a /proc entry) completely, or returns `nil` if it cannot be opened.
func readSmallFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { _ = close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            result.append(contentsOf: chunk[0..<n])
        } else if n == 0 {
            return result
        } else if errno != EINTR {
            return nil
        }
    }
}

/// Process-table queries used to decide whether a process group still has live members.
enum ProcessTable {
    /// The pids of non-zombie processes whose process group is `group`, found by scanning `/proc`.
    static func liveMembers(ofGroup group: Int32) -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var members: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                let end = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: bytes[0..<end], as: UTF8.self)
            }
            guard let pid = Int32(name), let stat = ProcStat.read(pid: pid) else { continue }
            if stat.processGroup == group && stat.state != "Z" && stat.state != "X" {
                members.append(pid)
            }
        }
        return members
    }

    /// `true` when no live (non-zombie) process is left in the process group.
    static func groupIsGone(_ group: Int32) -> Bool {
        if kill(-group, 0) != 0 && errno == ESRCH { return true }
        return liveMembers(ofGroup: group).isEmpty
    }
}
