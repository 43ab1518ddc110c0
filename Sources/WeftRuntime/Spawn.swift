#if canImport(Glibc)
import Glibc
#endif

/// A freshly spawned child and the read end of its combined stdout/stderr pipe.
struct SpawnedChild {
    var pid: pid_t
    var outputFD: Int32
}

private enum SpawnFlags {
    static let setSigDefault: Int32 = 0x04  // POSIX_SPAWN_SETSIGDEF
    static let setSigMask: Int32 = 0x08  // POSIX_SPAWN_SETSIGMASK
}

/// Spawns `spec` with `posix_spawn`: own session (so its pid is its process group id), stdin from
/// /dev/null, stdout+stderr into a new pipe, default signal dispositions and an empty signal mask,
/// no inherited descriptors above 2, and exactly the given environment.
func spawn(_ spec: ProcessSpec) throws -> SpawnedChild {
    try validate(spec)
    let path = try resolveExecutable(spec)
    if let directory = spec.workingDirectory {
        try checkWorkingDirectory(directory, executable: spec.executable)
    }

    let pipe = try makePipe()
    // Only our end is non-blocking, so that the final drain after exit cannot block.
    _ = fcntl(pipe.read, F_SETFL, fcntl(pipe.read, F_GETFL) | O_NONBLOCK)
    var writeEndOpen = true
    defer { if writeEndOpen { close(pipe.write) } }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }

    func check(_ rc: Int32, _ what: String) throws {
        guard rc == 0 else {
            close(pipe.read)
            throw RuntimeError(
                code: .spawnFailed,
                message: "cannot start '\(spec.executable)': \(what) failed: \(errnoText(rc))",
                errno: rc
            )
        }
    }

    try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "opening /dev/null")
    try check(posix_spawn_file_actions_adddup2(&actions, pipe.write, 1), "redirecting stdout")
    try check(posix_spawn_file_actions_adddup2(&actions, pipe.write, 2), "redirecting stderr")
    if let directory = spec.workingDirectory {
        guard let addChdir = GNU.addChdir else {
            close(pipe.read)
            throw RuntimeError(
                code: .invalidWorkingDirectory,
                message: "cannot start '\(spec.executable)' in '\(directory)': this glibc has no posix_spawn_file_actions_addchdir_np (needs glibc 2.29+)"
            )
        }
        try check(addChdir(&actions, directory), "changing directory")
    }
    // Our descriptors are close-on-exec, but other libraries in the process may not be as careful.
    if let addClosefrom = GNU.addClosefrom {
        try check(addClosefrom(&actions, 3), "closing inherited descriptors")
    }

    var mask = sigset_t()
    sigemptyset(&mask)
    try check(posix_spawnattr_setsigmask(&attributes, &mask), "setting the signal mask")
    // Ignored signals survive exec (NIO ignores SIGPIPE, for example); the child gets the defaults.
    var defaults = sigset_t()
    sigfillset(&defaults)
    try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "setting signal defaults")
    let flags = GNU.spawnSetSID | SpawnFlags.setSigMask | SpawnFlags.setSigDefault
    try check(posix_spawnattr_setflags(&attributes, Int16(flags)), "setting spawn flags")

    let argv = [spec.executable] + spec.arguments
    let envp = spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    var pid: pid_t = 0
    let rc = withCStringArray(argv) { argvPointer in
        withCStringArray(envp) { envPointer in
            posix_spawn(&pid, path, &actions, &attributes, argvPointer, envPointer)
        }
    }
    close(pipe.write)
    writeEndOpen = false
    guard rc == 0 else {
        close(pipe.read)
        let shown = path == spec.executable ? "'\(path)'" : "'\(spec.executable)' (\(path))"
        throw RuntimeError(
            code: rc == ENOENT ? .executableNotFound : .spawnFailed,
            message: "cannot start \(shown): \(errnoText(rc))",
            errno: rc
        )
    }
    return SpawnedChild(pid: pid, outputFD: pipe.read)
}

private func validate(_ spec: ProcessSpec) throws {
    func bad(_ what: String) -> RuntimeError {
        RuntimeError(code: .invalidArgument, message: "cannot start '\(spec.executable)': \(what)")
    }
    if spec.executable.isEmpty { throw bad("the executable is empty") }
    for value in [spec.executable] + spec.arguments + Array(spec.environment.values) + [spec.workingDirectory ?? ""]
    where value.utf8.contains(0) {
        throw bad("a value contains a NUL byte")
    }
    for key in spec.environment.keys where key.isEmpty || key.contains("=") || key.utf8.contains(0) {
        throw bad("invalid environment variable name '\(key)'")
    }
}

/// Resolves a bare name against the `PATH` of the child's environment (then the agent's, then a
/// default), like `execvpe`; a name containing `/` is used as is.
private func resolveExecutable(_ spec: ProcessSpec) throws -> String {
    let name = spec.executable
    if name.contains("/") { return name }
    let searchPath = spec.environment["PATH"]
        ?? getenv("PATH").map { String(cString: $0) }
        ?? "/usr/local/bin:/usr/bin:/bin"
    var deniedCandidate: String?
    for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
        let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
        var info = stat()
        guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
        if access(candidate, X_OK) == 0 { return candidate }
        deniedCandidate = deniedCandidate ?? candidate
    }
    if let deniedCandidate {
        throw RuntimeError(
            code: .spawnFailed,
            message: "cannot start '\(name)' (\(deniedCandidate)): \(errnoText(EACCES))",
            errno: EACCES
        )
    }
    throw RuntimeError(
        code: .executableNotFound,
        message: "cannot start '\(name)': executable not found in PATH (\(searchPath))",
        errno: ENOENT
    )
}

private func checkWorkingDirectory(_ directory: String, executable: String) throws {
    var info = stat()
    if stat(directory, &info) != 0 {
        let code = errno
        throw RuntimeError(
            code: .invalidWorkingDirectory,
            message: "cannot start '\(executable)': working directory '\(directory)': \(errnoText(code))",
            errno: code
        )
    }
    if (info.st_mode & S_IFMT) != S_IFDIR {
        throw RuntimeError(
            code: .invalidWorkingDirectory,
            message: "cannot start '\(executable)': working directory '\(directory)' is not a directory",
            errno: ENOTDIR
        )
    }
}

/// Calls `body` with a NULL-terminated C array of copies of `strings`, freed afterwards.
private func withCStringArray<R>(
    _ strings: [String],
    _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
