import Foundation
import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite("ReplicaProcess")
struct ReplicaProcessTests {
    @Test func logsStdoutAndStderrAndReportsExitCode() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "r1")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "echo hello; echo err >&2; exit 3"])
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(3))
            #expect(contents(of: log.path) == "hello\nerr\n")
        }
    }

    @Test func largeOutputIsFullyLoggedBeforeExitIsReported() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "chatty", policy: LogRotationPolicy(maxBytes: 512 * 1024, keep: 3))
            let spec = ProcessSpec(executable: "/usr/bin/seq", arguments: ["1", "200000"])
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            let lines = try RotatingLog.lastLines(200_000, directory: dir, replica: "chatty", keep: 3)
            #expect(lines.count == 200_000)
            #expect(lines.first == "1")
            #expect(lines.last == "200000")
        }
    }

    @Test func environmentIsExactlyTheGivenOne() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "env")
            let spec = ProcessSpec(executable: "/usr/bin/env", environment: ["FOO": "bar baz", "WEFT_X": "1"])
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            let lines = contents(of: log.path).split(separator: "\n").map(String.init).sorted()
            #expect(lines == ["FOO=bar baz", "WEFT_X=1"])
        }
    }

    @Test func bareNameIsResolvedAgainstTheChildsPath() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "path")
            let spec = ProcessSpec(
                executable: "sh",
                arguments: ["-c", "echo \"$FOO\""],
                environment: ["FOO": "from-env", "PATH": "/usr/bin:/bin"]
            )
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            #expect(contents(of: log.path) == "from-env\n")
        }
    }

    @Test func workingDirectoryIsHonoured() async throws {
        try await withTemporaryDirectory { dir in
            let work = dir + "/work dir"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: false)
            let log = try RotatingLog(directory: dir, replica: "pwd")
            let spec = ProcessSpec(executable: "/bin/pwd", arguments: ["-P"], workingDirectory: work)
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            let resolved = try #require(realpath(work, nil))
            defer { free(resolved) }
            #expect(contents(of: log.path) == String(cString: resolved) + "\n")
        }
    }

    @Test func stdinIsDevNull() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "stdin")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "cat; echo done"])
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            #expect(contents(of: log.path) == "done\n")
        }
    }

    @Test func descriptorsDoNotLeakIntoChildren() async throws {
        // Deliberately not close-on-exec, as a careless library might open it.
        let leaked = open("/dev/null", O_RDONLY)
        #expect(leaked > 2)
        defer { close(leaked) }
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "fds")
            let spec = ProcessSpec(executable: "/bin/ls", arguments: ["/proc/self/fd"])
            let status = try await withProcess(spec, log: log) { await $0.waitForExit() }
            #expect(status == .exited(0))
            let fds = Set(contents(of: log.path).split(separator: "\n").compactMap { Int32($0) })
            // 0-2 plus the directory ls itself has open to list /proc/self/fd.
            #expect(fds.subtracting([0, 1, 2]).count <= 1)
            #expect(!fds.contains(leaked) || leaked == 3)
        }
    }

    @Test func exitedProcessIsReaped() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "reap")
            let process = try ReplicaProcess.start(ProcessSpec(executable: "/bin/true"), log: log)
            #expect(await process.waitForExit() == .exited(0))
            var status: Int32 = 0
            let rc = waitpid(process.pid, &status, WNOHANG)
            let code = errno
            #expect(rc == -1 && code == ECHILD, "the exited process was not reaped")
            #expect(process.exitStatus == .exited(0))
        }
    }

    @Test func identityCarriesTheProcStartTime() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "id")
            try await withProcess(ProcessSpec(executable: "/bin/sleep", arguments: ["100"]), log: log) { process in
                #expect(process.identity.pid == process.pid)
                #expect(process.identity.startTime > 0)
                #expect(ProcessIdentity.current(pid: process.pid) == process.identity)
                #expect(ProcStat.read(pid: process.pid)?.processGroup == process.pid)
            }
        }
    }

    @Test func stopReturnsAfterSigtermForAWellBehavedProcess() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "term")
            try await withProcess(ProcessSpec(executable: "/bin/sleep", arguments: ["100"]), log: log) { process in
                let status = await process.stop(grace: .seconds(60))
                #expect(status == .signaled(SIGTERM))
                #expect(await process.stop(grace: .seconds(60)) == .signaled(SIGTERM))
                #expect(process.signalGroup(SIGTERM) == false)
            }
        }
    }

    @Test func stopEscalatesToSigkillAfterTheGrace() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "stubborn")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "trap '' TERM; echo ready; sleep 100"])
            try await withProcess(spec, log: log) { process in
                try await waitUntil("the TERM trap") { contents(of: log.path).contains("ready") }
                #expect(await process.stop(grace: .milliseconds(200)) == .signaled(SIGKILL))
            }
        }
    }

    @Test func stopKillsTheWholeProcessGroup() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "group")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "sleep 100 & echo $!; wait"])
            try await withProcess(spec, log: log) { process in
                var child: Int32 = 0
                try await waitUntil("the background child's pid") {
                    child = Int32(contents(of: log.path).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    return child > 0
                }
                #expect(isAlive(child))
                #expect(ProcStat.read(pid: child)?.processGroup == process.pid)
                _ = await process.stop(grace: .seconds(60))
                try await waitUntil("the background child to die") { !isAlive(child) }
            }
        }
    }

    @Test func exitOfTheMainProcessKillsWhatIsLeftOfItsGroup() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "orphans")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "sleep 100 & echo $!; exit 0"])
            try await withProcess(spec, log: log) { process in
                #expect(await process.waitForExit() == .exited(0))
                let child = try #require(Int32(contents(of: log.path).trimmingCharacters(in: .whitespacesAndNewlines)))
                try await waitUntil("the orphaned child to die") { !isAlive(child) }
            }
        }
    }

    @Test func missingExecutableIsAnErrorNamingIt() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "missing")
            let bare = #expect(throws: RuntimeError.self) {
                try ReplicaProcess.start(ProcessSpec(executable: "weft-no-such-executable", environment: ["PATH": "/usr/bin:/bin"]), log: log)
            }
            #expect(bare?.code == .executableNotFound)
            #expect(bare?.message.contains("weft-no-such-executable") == true)

            let absolute = #expect(throws: RuntimeError.self) {
                try ReplicaProcess.start(ProcessSpec(executable: dir + "/nope"), log: log)
            }
            #expect(absolute?.code == .executableNotFound)
            #expect(absolute?.message.contains(dir + "/nope") == true)
            #expect(absolute?.message.contains("No such file or directory") == true)
        }
    }

    @Test func nonExecutableFileIsPermissionDenied() async throws {
        try await withTemporaryDirectory { dir in
            let script = dir + "/not-executable"
            try "#!/bin/sh\necho hi\n".write(toFile: script, atomically: false, encoding: .utf8)
            chmod(script, 0o644)
            let log = try RotatingLog(directory: dir, replica: "denied")
            let error = #expect(throws: RuntimeError.self) {
                try ReplicaProcess.start(ProcessSpec(executable: script), log: log)
            }
            #expect(error?.code == .spawnFailed)
            #expect(error?.message.contains(script) == true)
            #expect(error?.message.contains("Permission denied") == true)
        }
    }

    @Test func missingWorkingDirectoryIsAnError() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "nowd")
            let error = #expect(throws: RuntimeError.self) {
                try ReplicaProcess.start(ProcessSpec(executable: "/bin/true", workingDirectory: dir + "/absent"), log: log)
            }
            #expect(error?.code == .invalidWorkingDirectory)
            #expect(error?.message.contains(dir + "/absent") == true)
        }
    }

    @Test func killLeftoverRefusesAMismatchingStartTimeAndKillsAMatchingOne() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "leftover")
            let spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "sleep 100 & echo $!; wait"])
            try await withProcess(spec, log: log) { process in
                var child: Int32 = 0
                try await waitUntil("the background child's pid") {
                    child = Int32(contents(of: log.path).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    return child > 0
                }
                let stale = ProcessIdentity(pid: process.pid, startTime: process.identity.startTime + 1)
                #expect(await ReplicaProcess.killLeftover(stale, grace: .seconds(5)) == false)
                #expect(isAlive(process.pid))
                #expect(process.exitStatus == nil)

                #expect(await ReplicaProcess.killLeftover(process.identity, grace: .seconds(60)) == true)
                #expect(await process.waitForExit() == .signaled(SIGTERM))
                #expect(!isAlive(child))
            }
        }
    }

    @Test func killLeftoverOfAnExitedProcessSignalsNothing() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "gone")
            let process = try ReplicaProcess.start(ProcessSpec(executable: "/bin/true"), log: log)
            _ = await process.waitForExit()
            #expect(await ReplicaProcess.killLeftover(process.identity, grace: .seconds(1)) == false)
        }
    }
}
