#if canImport(Glibc)
import Glibc
#endif

/// An error from the runtime: what failed, where, and the errno text when the system reported one.
public struct RuntimeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, growable identifier for the kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code's name, e.g. `spawnFailed`.
        public let rawValue: String

        init(_ rawValue: String) { self.rawValue = rawValue }

        /// The code's name.
        public var description: String { rawValue }

        /// The executable was not found on the search path or at the given path.
        public static let executableNotFound = Code("executableNotFound")
        /// `posix_spawn` failed (for example permission denied or a bad executable format).
        public static let spawnFailed = Code("spawnFailed")
        /// The working directory does not exist or is not a directory.
        public static let invalidWorkingDirectory = Code("invalidWorkingDirectory")
        /// A caller-provided value is not acceptable (for example a replica name containing `/`).
        public static let invalidArgument = Code("invalidArgument")
        /// Reading or writing a log file failed.
        public static let logIO = Code("logIO")
        /// No free port could be obtained from the kernel.
        public static let portAllocation = Code("portAllocation")
        /// A system call needed by the runtime failed.
        public static let system = Code("system")
        /// Setting up or removing a replica's network namespace, veth pair or address failed.
        public static let network = Code("network")
        /// The requested workload driver cannot run on this node (not root, `ip` missing, no pod CIDR).
        public static let driverUnavailable = Code("driverUnavailable")
        /// Creating, running or removing a container with runc failed (oci driver).
        public static let container = Code("container")
        /// Importing, reading or unpacking a container image failed, or the image is not on the node.
        public static let image = Code("image")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable message naming what failed and where.
    public var message: String
    /// The errno value reported by the system, if any.
    public var errno: Int32?

    /// Creates an error with a code, a message and optionally the errno that caused it.
    public init(code: Code, message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// The message, which already names the failing executable, file or address.
    public var description: String { message }
}

/// The text of an errno value, e.g. "No such file or directory (errno 2)".
func errnoText(_ code: Int32) -> String {
    if let text = strerror(code) {
        return "\(String(cString: text)) (errno \(code))"
    }
    return "errno \(code)"
}
