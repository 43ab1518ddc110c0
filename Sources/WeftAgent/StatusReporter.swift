import Logging
import WeftClient
import WeftCore

/// Sends a replica's statuses to the API server in order. A failing send (server away) is retried with
/// backoff; statuses that arrive meanwhile are coalesced so only the newest is sent next.
final class StatusReporter: Sendable {
    private let updates: AsyncStream<ReplicaStatus>.Continuation
    private let task: Task<Void, Never>

    init(client: APIClient, namespace: String, replica: String, logger: Logger) {
        let (stream, continuation) = AsyncStream.makeStream(of: ReplicaStatus.self, bufferingPolicy: .bufferingNewest(1))
        self.updates = continuation
        self.task = Task {
            var iterator = stream.makeAsyncIterator()
            var pending = await iterator.next()
            while let status = pending {
                var delay = RetryDelay(initial: .milliseconds(250))
                while true {
                    do {
                        try await client.updateReplicaStatus(namespace: namespace, name: replica, status: status)
                        break
                    } catch let error as APIError where error.status == 404 {
                        return
                    } catch {
                        logger.debug("status update failed; retrying", metadata: ["replica": "\(replica)", "error": "\(error)"])
                        try? await Task.sleep(for: delay.next())
                        if Task.isCancelled { return }
                    }
                }
                pending = await iterator.next()
            }
        }
    }

    func report(_ status: ReplicaStatus) { updates.yield(status) }

    /// Sends what is pending, then stops.
    func finish() async {
        updates.finish()
        await task.value
    }

    func cancel() {
        updates.finish()
        task.cancel()
    }
}
