import ArgumentParser
import Foundation
import NIOCore
import WeftControlPlane
import WeftCore
import WeftRuntime

enum Paths {
    /// Expands a leading `~` to the home directory.
    static func expand(_ path: String) -> String {
        (path as NSString).expandingTildeInPath
    }

    /// The directory of the running `weft` executable.
    static func executableDirectory() -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (path as NSString).deletingLastPathComponent
    }
}

enum ListenAddress {
    /// Parses `HOST:PORT` or `[IPv6]:PORT`.
    static func parse(_ text: String, option: String) throws -> (host: String, port: Int) {
        var host = Substring(text)
        var portText: Substring
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]"), host[host.index(after: close)...].hasPrefix(":") else {
                throw ValidationError("\(option): \"\(text)\" is not HOST:PORT (IPv6 as [::1]:7443)")
            }
            portText = host[host.index(close, offsetBy: 2)...]
            host = host[host.index(after: host.startIndex)..<close]
        } else {
            guard let colon = host.lastIndex(of: ":") else {
                throw ValidationError("\(option): \"\(text)\" is not HOST:PORT, e.g. 127.0.0.1:7443")
            }
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw ValidationError("\(option): \"\(text)\" needs a host and a port between 0 and 65535")
        }
        return (String(host), port)
    }

    /// The host to put in the API URL: a wildcard listen address is reached on loopback.
    static func urlHost(_ host: String, bound: SocketAddress) -> String {
        switch host {
        case "0.0.0.0": return "127.0.0.1"
        case "::": return "[::1]"
        default: return host.contains(":") ? "[\(host)]" : host
        }
    }
}

/// Serves replica logs from the local agent's log directory.
struct LocalReplicaLogs: ReplicaLogSource {
    let directory: String

    func log(namespace: String, replica: String, tail: Int?, follow: Bool) throws -> AsyncThrowingStream<ByteBuffer, any Error> {
        let dir = (directory as NSString).appendingPathComponent(namespace)
        guard FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("\(replica).log")) else {
            throw APIFailure(code: 404, message: "replica \"\(replica)\" has no log on this node yet")
        }
        let lines = tail ?? 1_000_000
        if follow {
            let stream = try RotatingLog.follow(directory: dir, replica: replica, initialLines: lines)
            return AsyncThrowingStream { continuation in
                let task = Task {
                    for await chunk in stream { continuation.yield(chunk) }
                    continuation.finish()
                }
                continuation.onTermination = { _ in task.cancel() }
            }
        }
        let text = try RotatingLog.lastLines(lines, directory: dir, replica: replica).map { $0 + "\n" }.joined()
        return AsyncThrowingStream { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
    }
}
