#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A replica's running process, started with `posix_spawn` in its own session and process group,
/// with stdout and stderr appended to the replica's log.
///
/// The replica lives as long as its main process: when that process exits, whatever is left of
/// its process group is killed, as a container runtime does when a container's init exits.
/// Exit is observed by a thread blocked in `waitid`, not by polling; the process is always reaped.
/// Dropping the object does not stop the process — call ``stop(grace:)``.
public final class ReplicaProcess: Sendable {
    /// The pid and start time of the main process; persist it to find leftovers after an agent crash.
    public let identity: ProcessIdentity
    /// The executable as given in the ``ProcessSpec``.
    public let executable: String

    private struct Lifecycle {
        /// Set once the main process has been reaped; after that its pid may be reused and must not be signalled.
        var reaped = false
        /// Set once the process is reaped and its output drained.
        var exit: ExitStatus?
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
    }

    private let lifecycle = Mutex(Lifecycle())

    private init(identity: ProcessIdentity, executable: String) {
        self.identity = identity
        self.executable = executable
    }

    /// The pid of the main process, which is also its process group id.
    public var pid: Int32 { identity.pid }

    /// The exit status if the process has exited and its output has been written, else `nil`.
    public var exitStatus: ExitStatus? { lifecycle.withLock { $0.exit } }

    /// Starts a process whose stdout and stderr are appended to `log`.
    ///
    /// Throws a ``RuntimeError`` naming the executable and the errno text when it cannot be started.
    public static func start(
        _ spec: ProcessSpec,
        log: RotatingLog,
        logger: Logger = Logger(label: "weft.runtime.process")
    ) throws -> ReplicaProcess {
        let warnedOnce = Mutex(false)
        return try start(spec, logger: logger) { bytes in
            do {
                try log.append(bytes)
            } catch {
                // Warn once per process: a full disk would otherwise log on every chunk.
                let first = warnedOnce.withLock { warned in
                    defer { warned = true }
                    return !warned
                }
                if first {
                    logger.warning("dropping replica output", metadata: ["path": "\(log.path)", "error": "\(error)"])
                }
            }
        }
    }

    /// Starts a process whose combined stdout and stderr are handed to `output` on a reader thread.
    static func start(
        _ spec: ProcessSpec,
        logger: Logger,
        output: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) throws -> ReplicaProcess {
        let child = try spawn(spec)
        let process = ReplicaProcess(
            identity: ProcessIdentity(pid: child.pid, startTime: ProcStat.read(pid: child.pid)?.startTime ?? 0),
            executable: spec.executable
        )
        do {
            try process.startSupervision(outputFD: child.outputFD, logger: logger, output: output)
        } catch {
            close(child.outputFD)
            _ = kill(-child.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
            throw error
        }
        return process
    }

    /// Waits until the process has exited, been reaped and its output written; not cancellable.
    public func waitForExit() async -> ExitStatus {
        await withCheckedContinuation { (continuation: CheckedContinuation<ExitStatus, Never>) in
            let done: ExitStatus? = lifecycle.withLock { state in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Stops the replica: SIGTERM to its process group, then SIGKILL to the group if the main process
    /// has not exited within `grace` (immediately for a zero grace, or if the calling task is cancelled).
    ///
    /// Idempotent and safe after exit; returns the exit status.
    @discardableResult
    public func stop(grace: Duration) async -> ExitStatus {
        if let exit = exitStatus { return exit }
        if grace <= .zero {
            signalGroup(SIGKILL)
            return await waitForExit()
        }
        signalGroup(SIGTERM)
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = await self.waitForExit()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: grace)
                return false
            }
            let exitedInTime = await group.next() ?? false
            if !exitedInTime { self.signalGroup(SIGKILL) }
            group.cancelAll()
        }
        return await waitForExit()
    }

    /// Sends `signal` to the replica's process group unless the main process has already been reaped.
    /// Returns `false` when nothing was signalled.
    @discardableResult
    public func signalGroup(_ signal: Int32) -> Bool {
        lifecycle.withLock { state in
            // Holding the lock keeps the exit thread from reaping (and so freeing the pid) meanwhile.
            guard !state.reaped else { return false }
            return kill(-identity.pid, signal) == 0
        }
    }

    // MARK: - Leftovers from a previous agent

    /// Kills the process group of a replica started by an earlier agent, but only if `/proc/<pid>/stat`
    /// still shows the recorded start time (so a reused pid is never signalled): SIGTERM, then SIGKILL after `grace`.
    ///
    /// Returns `true` if the group was signalled and is now gone, `false` if no matching process exists.
    /// If the recorded main process is gone while others of its group live on, they cannot be told apart
    /// from a reused pid with certainty and are left alone.
    public static func killLeftover(_ identity: ProcessIdentity, grace: Duration) async -> Bool {
        guard let stat = ProcStat.read(pid: identity.pid),
              stat.startTime == identity.startTime,
              stat.processGroup == identity.pid
        else { return false }

        signalLeftover(identity, SIGTERM)
        if await waitUntilGone(identity, within: grace) { return true }
        signalLeftover(identity, SIGKILL)
        return await waitUntilGone(identity, within: .seconds(10))
    }

    /// Signals the group if it is still the recorded one: either the leader with the recorded start time
    /// exists, or the leader is gone but members remain (the kernel does not reuse a pid that is still a
    /// live group's id).
    private static func signalLeftover(_ identity: ProcessIdentity, _ signal: Int32) {
        if let stat = ProcStat.read(pid: identity.pid), stat.startTime != identity.startTime { return }
        _ = kill(-identity.pid, signal)
    }

    /// Waits (checking with a short backoff: these processes are not our children, so `waitid` cannot
    /// be used) until no live member of the group is left.
    private static func waitUntilGone(_ identity: ProcessIdentity, within limit: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var pause = Duration.milliseconds(5)
        while true {
            if let stat = ProcStat.read(pid: identity.pid), stat.startTime != identity.startTime { return true }
            if ProcessTable.groupIsGone(identity.pid) { return true }
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: min(pause, deadline - clock.now))
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    // MARK: - Supervision threads

    private func startSupervision(
        outputFD: Int32,
        logger: Logger,
        output: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) throws {
        let wake = try makePipe(nonBlocking: true)
        let reader: NativeThread
        do {
            reader = try NativeThread.start(detached: false) {
                Self.pumpOutput(from: outputFD, wake: wake.read, into: output)
            }
        } catch {
            close(wake.read)
            close(wake.write)
            throw error
        }
        do {
            _ = try NativeThread.start(detached: true) {
                self.superviseExit(reader: reader, wake: wake, logger: logger)
            }
        } catch {
            // The caller kills the child; let the reader finish first so it does not read a closed fd.
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
            reader.join()
            close(wake.read)
            close(wake.write)
            throw error
        }
    }

    /// Runs on a dedicated thread: blocks until the main process exits, kills what is left of its group,
    /// reaps it, lets the reader drain the pipe, then publishes the exit status.
    private func superviseExit(reader: NativeThread, wake: (read: Int32, write: Int32), logger: Logger) {
        let pid = identity.pid
        var info = siginfo_t()
        var ours = true
        // WNOWAIT leaves the process a zombie, which pins its pid (and so the group id) while we clean up.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            if errno == EINTR { continue }
            ours = false
            break
        }
        var status: Int32 = 0
        lifecycle.withLock { state in
            if ours {
                _ = kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 {
                    if errno != EINTR {
                        ours = false
                        break
                    }
                }
            }
            state.reaped = true
        }
        if !ours {
            logger.error(
                "replica process was reaped elsewhere (is SIGCHLD ignored?); exit status unknown",
                metadata: ["pid": "\(pid)", "executable": "\(executable)"]
            )
        }

        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        reader.join()
        close(wake.read)
        close(wake.write)

        let exit = ours ? ExitStatus(waitStatus: status) : .exited(-1)
        let waiters = lifecycle.withLock { state in
            state.exit = exit
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: exit) }
    }

    /// Runs on a dedicated thread: copies the output pipe to `output` until EOF, or until woken after the
    /// process group is dead (a descendant that escaped the group could otherwise hold the pipe open forever).
    private static func pumpOutput(
        from fd: Int32,
        wake: Int32,
        into output: (UnsafeRawBufferPointer) -> Void
    ) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer {
            buffer.deallocate()
            close(fd)
        }
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 {
                let n = read(fd, buffer.baseAddress, buffer.count)
                if n > 0 {
                    output(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    continue
                }
                if n == 0 { return }
                if errno == EAGAIN || errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 {
                // The group is dead: take what is already in the pipe (the read end is non-blocking) and stop.
                while true {
                    let n = read(fd, buffer.baseAddress, buffer.count)
                    if n > 0 {
                        output(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }
    }
}
