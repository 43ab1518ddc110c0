#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// How large a replica log may grow and how many rotated files are kept.
public struct LogRotationPolicy: Sendable, Hashable {
    /// The size at which `<replica>.log` is rotated; a single write larger than this still goes to one file.
    public var maxBytes: Int
    /// How many rotated files (`.log.1` … `.log.N`) are kept; 0 discards the old file on rotation.
    public var keep: Int

    /// Creates a policy; the defaults are 10 MiB per file and two rotated files.
    public init(maxBytes: Int = 10 * 1024 * 1024, keep: Int = 2) {
        self.maxBytes = max(1, maxBytes)
        self.keep = max(0, keep)
    }
}

/// An append-only replica log at `<directory>/<replica>.log`, rotated to `.log.1` … `.log.N` when it
/// reaches the size cap; files are created 0640 (or stricter, per umask).
///
/// Writes are serialized by a lock, so one log may be shared by the output reader and the agent.
public final class RotatingLog: Sendable {
    /// The directory holding the log files.
    public let directory: String
    /// The replica name, which is the file's base name.
    public let replica: String
    /// The size cap and number of rotated files kept.
    public let policy: LogRotationPolicy

    private struct State {
        var fd: Int32 = -1
        var size: Int = 0
        var closed = false
    }

    private let state = Mutex(State())

    /// Opens (creating if needed) `<directory>/<replica>.log` for appending; creates `directory` (0750)
    /// if it is missing.
    public init(directory: String, replica: String, policy: LogRotationPolicy = LogRotationPolicy()) throws {
        try Self.validate(replica: replica)
        self.directory = directory
        self.replica = replica
        self.policy = policy
        if mkdir(directory, 0o750) != 0 && errno != EEXIST {
            let code = errno
            throw RuntimeError(code: .logIO, message: "cannot create log directory '\(directory)': \(errnoText(code))", errno: code)
        }
        let path = self.path
        try state.withLock { state in
            try Self.open(path, into: &state)
        }
    }

    deinit {
        state.withLock { state in
            if state.fd >= 0 { _ = Glibc.close(state.fd) }
        }
    }

    /// The path of the current log file.
    public var path: String { Self.path(directory: directory, replica: replica) }

    /// The path of `<replica>.log` (generation 0) or of the rotated file `<replica>.log.<generation>`.
    public static func path(directory: String, replica: String, generation: Int = 0) -> String {
        let base = directory.hasSuffix("/") ? directory + replica + ".log" : directory + "/" + replica + ".log"
        return generation == 0 ? base : base + ".\(generation)"
    }

    /// Appends raw bytes, rotating first if they would push the current file past the cap.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        let path = self.path
        try state.withLock { state in
            guard !state.closed else {
                throw RuntimeError(code: .logIO, message: "log '\(path)' is closed")
            }
            if state.fd < 0 { try Self.open(path, into: &state) }
            if state.size > 0 && state.size + bytes.count > policy.maxBytes {
                try rotate(&state)
            }
            if let code = writeAll(state.fd, bytes) {
                throw RuntimeError(code: .logIO, message: "cannot write log '\(path)': \(errnoText(code))", errno: code)
            }
            state.size += bytes.count
        }
    }

    /// Appends the readable bytes of a buffer.
    public func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try append($0) }
    }

    /// Appends UTF-8 text, for example a line the agent writes about the replica's lifecycle.
    public func append(_ text: String) throws {
        var text = text
        try text.withUTF8 { try append(UnsafeRawBufferPointer($0)) }
    }

    /// Closes the file; later appends fail.
    public func close() {
        state.withLock { state in
            if state.fd >= 0 { _ = Glibc.close(state.fd) }
            state.fd = -1
            state.closed = true
        }
    }

    private func rotate(_ state: inout State) throws {
        _ = Glibc.close(state.fd)
        state.fd = -1
        let current = path
        if policy.keep == 0 {
            _ = unlink(current)
        } else {
            // rename() replaces the oldest file, so it needs no separate delete.
            for generation in stride(from: policy.keep - 1, through: 1, by: -1) {
                _ = rename(
                    Self.path(directory: directory, replica: replica, generation: generation),
                    Self.path(directory: directory, replica: replica, generation: generation + 1)
                )
            }
            if rename(current, Self.path(directory: directory, replica: replica, generation: 1)) != 0 && errno != ENOENT {
                let code = errno
                throw RuntimeError(code: .logIO, message: "cannot rotate log '\(current)': \(errnoText(code))", errno: code)
            }
        }
        try Self.open(current, into: &state)
    }

    private static func open(_ path: String, into state: inout State) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            let code = errno
            throw RuntimeError(code: .logIO, message: "cannot open log '\(path)': \(errnoText(code))", errno: code)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            throw RuntimeError(code: .logIO, message: "cannot stat log '\(path)': \(errnoText(code))", errno: code)
        }
        // An existing file may predate us with looser permissions; never widen, only narrow.
        let mode = info.st_mode & 0o7777
        if mode & ~0o640 != 0 { _ = fchmod(fd, mode & 0o640) }
        state.fd = fd
        state.size = Int(info.st_size)
    }

    static func validate(replica: String) throws {
        if replica.isEmpty || replica == "." || replica == ".." || replica.contains("/") || replica.utf8.contains(0) {
            throw RuntimeError(
                code: .invalidArgument,
                message: "invalid replica name '\(replica)' for a log file: it must be non-empty and contain no '/'"
            )
        }
    }
}
