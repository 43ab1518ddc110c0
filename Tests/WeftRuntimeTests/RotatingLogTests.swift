import Foundation
import NIOCore
import Testing
@testable import WeftRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite("RotatingLog")
struct RotatingLogTests {
    private func line(_ i: Int) -> String {
        "line-" + String(repeating: "0", count: 3 - String(i).count) + String(i)
    }

    @Test func rotatesAtTheSizeCapAndKeepsN() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "web-1", policy: LogRotationPolicy(maxBytes: 100, keep: 2))
            for i in 0..<50 { try log.append(line(i) + "\n") }  // 9 bytes a line: 11 lines a file

            for generation in 0...2 {
                let path = RotatingLog.path(directory: dir, replica: "web-1", generation: generation)
                var info = stat()
                #expect(stat(path, &info) == 0, "missing \(path)")
                #expect(info.st_size <= 100)
                #expect(info.st_mode & 0o777 & ~0o640 == 0, "mode of \(path) is looser than 0640")
            }
            #expect(access(RotatingLog.path(directory: dir, replica: "web-1", generation: 3), F_OK) != 0)
            #expect(contents(of: log.path).hasSuffix(line(49) + "\n"))
        }
    }

    @Test func lastLinesReadsAcrossRotation() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "web-1", policy: LogRotationPolicy(maxBytes: 100, keep: 2))
            for i in 0..<50 { try log.append(line(i) + "\n") }

            let currentCount = contents(of: log.path).split(separator: "\n").count
            #expect(currentCount < 15)
            #expect(try RotatingLog.lastLines(5, directory: dir, replica: "web-1") == (45..<50).map(line))
            #expect(try RotatingLog.lastLines(15, directory: dir, replica: "web-1") == (35..<50).map(line))
            let everything = try RotatingLog.lastLines(1000, directory: dir, replica: "web-1")
            #expect(everything.last == line(49))
            #expect(everything == (50 - everything.count..<50).map(line))
            #expect(try RotatingLog.lastLines(0, directory: dir, replica: "web-1") == [])
        }
    }

    @Test func lastLinesHandlesAMissingFinalNewlineAndMissingFiles() async throws {
        try await withTemporaryDirectory { dir in
            #expect(try RotatingLog.lastLines(3, directory: dir, replica: "absent") == [])
            let log = try RotatingLog(directory: dir, replica: "partial")
            try log.append("a\nb\nc")
            #expect(try RotatingLog.lastLines(2, directory: dir, replica: "partial") == ["b", "c"])
            #expect(try RotatingLog.lastLines(10, directory: dir, replica: "partial") == ["a", "b", "c"])
        }
    }

    @Test func existingLooseFileIsTightened() async throws {
        try await withTemporaryDirectory { dir in
            let path = RotatingLog.path(directory: dir, replica: "old")
            #expect(FileManager.default.createFile(atPath: path, contents: Data("x\n".utf8), attributes: [.posixPermissions: 0o666]))
            let log = try RotatingLog(directory: dir, replica: "old")
            try log.append("y\n")
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 & ~0o640 == 0)
            #expect(contents(of: path) == "x\ny\n")
        }
    }

    @Test func invalidReplicaNamesAreRejected() async throws {
        try await withTemporaryDirectory { dir in
            #expect(throws: RuntimeError.self) { try RotatingLog(directory: dir, replica: "../escape") }
            #expect(throws: RuntimeError.self) { try RotatingLog(directory: dir, replica: "") }
            #expect(throws: RuntimeError.self) { try RotatingLog.lastLines(1, directory: dir, replica: "a/b") }
        }
    }

    @Test func followYieldsAppendedDataAcrossRotations() async throws {
        try await withTemporaryDirectory { dir in
            let log = try RotatingLog(directory: dir, replica: "tail", policy: LogRotationPolicy(maxBytes: 20, keep: 1))
            try log.append("before\n")
            try await withTimeout("followed log lines") {
                let stream = try RotatingLog.follow(
                    directory: dir, replica: "tail", initialLines: 1, keep: 1, pollInterval: .milliseconds(10)
                )
                var iterator = stream.makeAsyncIterator()
                var seen = ""
                func read(until text: String) async throws {
                    while !seen.contains(text) {
                        guard let chunk = await iterator.next() else { throw TestTimeout(what: text) }
                        seen += String(buffer: chunk)
                    }
                }
                try await read(until: "before\n")
                // 7-byte lines with a 20-byte cap: the file rotates every few lines.
                for i in 0..<8 {
                    try log.append("line-\(i)\n")
                    try await read(until: "line-\(i)\n")
                }
                #expect(seen == "before\n" + (0..<8).map { "line-\($0)\n" }.joined())
            }
        }
    }

    @Test func followStartsAtTheEndAndWaitsForAFileThatDoesNotExistYet() async throws {
        try await withTemporaryDirectory { dir in
            try await withTimeout("a log created after following began") {
                let stream = try RotatingLog.follow(directory: dir, replica: "late", pollInterval: .milliseconds(10))
                var iterator = stream.makeAsyncIterator()
                let log = try RotatingLog(directory: dir, replica: "late")
                try log.append("hello\n")
                let chunk = await iterator.next()
                #expect(chunk.map { String(buffer: $0) } == "hello\n")
            }
        }
    }
}
