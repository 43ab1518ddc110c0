import Foundation
import Synchronization

/// What `KeepAliveLoad` saw: each answer's status and the weft-demo `version` in its body, and every
/// request that got no answer.
struct LoadTally: Sendable {
    /// `(seconds since the load started, status, version)` per answer, in arrival order per connection.
    var answers: [(at: Double, status: Int, version: String)] = []
    /// Requests that failed without an answer (connect, reset, timeout), with the error.
    var errors: [String] = []

    var count: Int { answers.count }
    func count(version: String) -> Int { answers.filter { $0.version == version }.count }
    func count(status: Int) -> Int { answers.filter { $0.status == status }.count }
}

/// Bounded HTTP/1.1 load: `connections` keep-alive connections, each sending `GET /` one after the other
/// until `total` requests are done or `stop()` (and never longer than `deadline`). A connection the peer
/// closes is reopened. Blocking sockets on Dispatch threads, so the Swift concurrency pool stays free.
final class KeepAliveLoad: Sendable {
    private let host: String
    private let port: Int
    private let state = Mutex(State())
    private let started = Date()
    private let finished = DispatchGroup()

    private struct State {
        var tally = LoadTally()
        var sent = 0
        var stopped = false
    }

    init(host: String, port: Int, connections: Int, total: Int? = nil, deadline: Duration = .seconds(120)) {
        self.host = host
        self.port = port
        let limit = Date().addingTimeInterval(Double(deadline.components.seconds))
        for _ in 0..<connections {
            finished.enter()
            Thread.detachNewThread { [self] in
                defer { finished.leave() }
                run(total: total, until: limit)
            }
        }
    }

    private func run(total: Int?, until limit: Date) {
        var connection: BlockingHTTPConnection?
        while true {
            let go = state.withLock { s -> Bool in
                guard !s.stopped, total.map({ s.sent < $0 }) ?? true else { return false }
                s.sent += 1
                return true
            }
            guard go, Date() < limit else { return }
            do {
                if connection == nil { connection = try BlockingHTTPConnection(host: host, port: port, timeout: .seconds(10)) }
                try connection!.write("GET / HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: weft-tests\r\n\r\n")
                let answer = try connection!.readResponse()
                let version = (try? answer.jsonObject())?["version"] as? String ?? ""
                let at = Date().timeIntervalSince(started)
                state.withLock { $0.tally.answers.append((at, answer.status, version)) }
                if answer.headers["connection"]?.lowercased() == "close" { connection = nil }
            } catch {
                connection = nil
                state.withLock { $0.tally.errors.append("\(error)") }
            }
        }
    }

    /// What was seen so far.
    var tally: LoadTally { state.withLock { $0.tally } }

    /// Seconds since the load started.
    var elapsed: Double { Date().timeIntervalSince(started) }

    /// Stops sending and waits for the requests in flight.
    func stop() async -> LoadTally {
        state.withLock { $0.stopped = true }
        return await finish()
    }

    /// Waits until every connection is done (total reached, stopped or past the deadline).
    func finish() async -> LoadTally {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            finished.notify(queue: .global()) { continuation.resume() }
        }
        return tally
    }
}
