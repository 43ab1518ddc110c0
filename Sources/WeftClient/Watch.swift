import AsyncHTTPClient
import Foundation
import NIOCore
import WeftCore

extension APIClient {
    /// Streams the changes of `kind` after `resourceVersion` (or an `ADDED` event per existing object
    /// first, when nil), as the server sends them, including `BOOKMARK`s.
    ///
    /// The stream ends when the server closes it; an `ERROR` event with code 410 (history gone: list
    /// again) ends it with `APIError` status 410. Cancelling the consuming task closes the request.
    public func watch(_ kind: ResourceKind, namespace: String?, resourceVersion: String?, node: String? = nil) -> AsyncThrowingStream<WatchEventJSON, Error> {
        var parameters = [("watch", "true")]
        if let resourceVersion, !resourceVersion.isEmpty { parameters.append(("resourceVersion", resourceVersion)) }
        if let node { parameters.append(("node", node)) }
        let query = parameters
        let path = Self.collectionPath(kind, namespace: namespace)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response = try await self.openStream(path, query: query, client: self.http, accept: "application/x-ndjson")
                    var lines = LineSplitter()
                    do {
                        for try await chunk in response.body {
                            for line in try lines.append(chunk) {
                                if let event = try Self.watchEvent(line) { continuation.yield(event) }
                            }
                        }
                        if let line = lines.finish(), let event = try Self.watchEvent(line) { continuation.yield(event) }
                    } catch {
                        throw self.translate(error)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `watch` with the objects decoded as `T`.
    public func watch<T: Resource>(_ type: T.Type, namespace: String?, resourceVersion: String?, node: String? = nil) -> AsyncThrowingStream<WatchEvent<T>, Error> {
        let events = watch(T.resourceKind, namespace: namespace, resourceVersion: resourceVersion, node: node)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events {
                        if let typed = try Self.typed(event, as: T.self) { continuation.yield(typed) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// A replica's log; with `follow`, the stream continues with new output until cancelled.
    public func logs(namespace: String, replica: String, tail: Int?, follow: Bool) -> AsyncThrowingStream<ByteBuffer, Error> {
        var parameters: [(String, String)] = []
        if let tail { parameters.append(("tail", String(tail))) }
        if follow { parameters.append(("follow", "true")) }
        let query = parameters
        let path = Self.objectPath(.replica, namespace: namespace, name: replica) + "/log"
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response = try await self.openStream(path, query: query, client: self.streamingHTTP, accept: "text/plain")
                    do {
                        for try await chunk in response.body { continuation.yield(chunk) }
                    } catch {
                        throw self.translate(error)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: - Decoding

    /// Parses one NDJSON line; nil for a blank line. An `ERROR` event becomes a thrown `APIError`.
    static func watchEvent(_ line: [UInt8]) throws -> WatchEventJSON? {
        guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\t") }) else { return nil }
        let event: WatchEventJSON
        do {
            event = try JSONDecoder().decode(WatchEventJSON.self, from: Data(line))
        } catch {
            throw ClientError("unreadable watch event from the API server: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        if event.type == "ERROR" {
            let code: Int
            if case .int(let value)? = event.object["code"] { code = Int(value) } else { code = 500 }
            throw APIError(status: code, message: event.object["message"]?.stringValue ?? "watch failed")
        }
        return event
    }

    /// Decodes a watch event's object; nil for event types this client does not know.
    static func typed<T: Resource>(_ event: WatchEventJSON, as type: T.Type) throws -> WatchEvent<T>? {
        func object() throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: event.object.serialized())
            } catch {
                throw ClientError("unreadable \(T.resourceKind.rawValue) in a watch event: \(error)")
            }
        }
        switch event.type {
        case "ADDED": return .added(try object())
        case "MODIFIED": return .modified(try object())
        case "DELETED": return .deleted(try object())
        case "BOOKMARK": return event.resourceVersion.map { .bookmark($0) }
        default: return nil
        }
    }
}

/// Splits a byte stream into `\n`-terminated lines, however the chunks fall.
struct LineSplitter: Sendable {
    private var pending: [UInt8] = []
    /// Longest line accepted; a watch event is one object, far smaller.
    static let maxLine = 32 * 1024 * 1024

    /// Adds a chunk and returns the lines it completes, without their `\n`.
    mutating func append(_ chunk: ByteBuffer) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var view = chunk.readableBytesView[...]
        while let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
            if pending.isEmpty {
                lines.append(Array(view[..<newline]))
            } else {
                pending.append(contentsOf: view[..<newline])
                lines.append(pending)
                pending.removeAll(keepingCapacity: true)
            }
            view = view[view.index(after: newline)...]
        }
        pending.append(contentsOf: view)
        if pending.count > Self.maxLine {
            throw ClientError("a watch event from the API server is longer than \(Self.maxLine) bytes")
        }
        return lines
    }

    /// What is left after the stream ended, if anything.
    mutating func finish() -> [UInt8]? {
        defer { pending = [] }
        return pending.isEmpty ? nil : pending
    }
}
