import Foundation
import Logging
import ServiceLifecycle
import WeftCore
import WeftStore

/// Marks a node NotReady when its agent's heartbeat has not changed for `grace` (``NodeLeases``, on this
/// process's monotonic clock). Woken by node events from the store and by one timer set for the next
/// lease to run out — never by polling. What follows is the other controllers' work: the endpoints
/// controller drops the node's replicas from every service at once, and the deployment controller
/// replaces them on ready nodes. The agent's next heartbeat makes the node Ready again.
public struct NodeLifecycleController: ServiceLifecycle.Service {
    let registry: Registry
    let grace: Duration
    let startupGrace: Duration
    let logger: Logger

    /// `startupGrace` (at least `grace`) is what nodes registered before this start get to send their
    /// first heartbeat; default 15 s or `grace`, whichever is larger.
    public init(registry: Registry, grace: Duration, startupGrace: Duration? = nil, logger: Logger) {
        self.registry = registry
        self.grace = grace
        self.startupGrace = max(grace, startupGrace ?? .seconds(15))
        self.logger = logger
    }

    private enum Input: Sendable {
        case stored(WatchEvent)
        case timer
    }

    public func run() async throws {
        let clock = ContinuousClock()
        var leases = NodeLeases<ContinuousClock.Instant>(grace: grace, startupGrace: startupGrace)
        let (items, revision) = try await registry.store.list(kind: ResourceKind.node.rawValue, namespace: nil)
        leases.start(with: try items.map { stored in
            let node = try ResourceCodec.decode(Node.self, from: stored)
            return (node.name, node.status?.lastHeartbeat, node.status?.ready ?? false)
        }, at: clock.now)

        let (inputs, input) = AsyncStream.makeStream(of: Input.self)
        let store = registry.store
        let watching = Task {
            do {
                for try await event in store.watch(kind: ResourceKind.node.rawValue, namespace: nil, after: revision) {
                    input.yield(.stored(event))
                }
            } catch {
                if !Task.isCancelled { logger.error("node watch ended", metadata: ["error": "\(error)"]) }
            }
            input.finish()
        }
        var timer: (deadline: ContinuousClock.Instant, task: Task<Void, Never>)?
        defer {
            watching.cancel()
            timer?.task.cancel()
        }
        input.yield(.timer)
        for await next in inputs.cancelOnGracefulShutdown() {
            if case .stored(let event) = next {
                observe(event, in: &leases, at: clock.now)
            }
            var retry = false
            for (name, heartbeat, silent) in leases.expired(at: clock.now) {
                do {
                    try await markNotReady(name, heartbeat: heartbeat, silentFor: silent)
                    leases.markedNotReady(name)
                } catch {
                    logger.warning("cannot mark node NotReady; retrying", metadata: ["node": "\(name)", "error": "\(error)"])
                    retry = true
                }
            }
            // One timer, for the earliest lease; moved only when that changes.
            let deadline = retry ? clock.now.advanced(by: .milliseconds(200)) : leases.nextExpiry
            if timer?.deadline != deadline {
                timer?.task.cancel()
                timer = deadline.map { deadline in
                    (deadline, Task {
                        do {
                            try await Task.sleep(until: deadline, clock: clock)
                            input.yield(.timer)
                        } catch {}
                    })
                }
            }
        }
    }

    private func observe(_ event: WatchEvent, in leases: inout NodeLeases<ContinuousClock.Instant>, at now: ContinuousClock.Instant) {
        let name = event.object.key.name
        guard event.type != .deleted else {
            leases.remove(node: name)
            return
        }
        guard let node = try? ResourceCodec.decode(Node.self, from: event.object) else { return }
        let wasReady = leases.isReady(name)
        let ready = node.status?.ready ?? false
        leases.observe(node: name, heartbeat: node.status?.lastHeartbeat, ready: ready, at: now)
        if ready && wasReady == false {
            logger.info("node is Ready again", metadata: ["node": "\(name)"])
        }
    }

    /// Sets `status.ready` false unless a heartbeat arrived after the one the lease ran out on.
    private func markNotReady(_ name: String, heartbeat: String?, silentFor: Duration) async throws {
        let message = "no heartbeat for \(Self.describe(silentFor)) (grace \(Self.describe(grace)))"
        do {
            let stored = try await registry.update(Node.self, namespace: "", name: name) { node in
                guard var status = node.status, status.ready, status.lastHeartbeat == heartbeat else { return false }
                status.ready = false
                status.message = message
                node.status = status
                return true
            }
            // Not marked when a heartbeat came in meanwhile; its event renews the lease.
            guard stored["status"]?["message"]?.stringValue == message else { return }
            logger.warning("node is NotReady: its replicas are replaced on other nodes", metadata: ["node": "\(name)", "reason": "\(message)"])
        } catch let failure as APIFailure where failure.code == 404 {
            // Deleted meanwhile.
        }
    }

    /// `5 s`, `0.6 s`: to a tenth of a second.
    static func describe(_ duration: Duration) -> String {
        let tenths = Int((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 10 + 0.5)
        return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
    }
}
