import Logging
import WeftClient
import WeftCore

/// Keeps one runner per replica assigned to this node, in step with what the API server says: starts
/// runners for new replicas, stops them for replicas being deleted and then removes the object.
actor ReplicaSupervisor {
    private let context: AgentContext
    private var runners: [String: (runner: ReplicaRunner, task: Task<Void, Never>)] = [:]
    private var finishing: Set<String> = []

    init(context: AgentContext) {
        self.context = context
    }

    /// Brings the runner of `replica` in line with it.
    func observe(_ replica: Replica) {
        let key = "\(replica.namespace)/\(replica.name)"
        guard replica.spec.node == context.configuration.nodeName else {
            if runners[key] != nil { terminate(key, replica: replica, removeObject: false) }
            return
        }
        if replica.isTerminating {
            terminate(key, replica: replica, removeObject: true)
            return
        }
        if let existing = runners[key] {
            Task { await existing.runner.update(replica) }
            return
        }
        do {
            let runner = try ReplicaRunner(replica: replica, context: context)
            runners[key] = (runner, Task { await runner.run() })
            context.logger.info("starting replica", metadata: ["replica": "\(key)"])
        } catch {
            context.logger.error("cannot set up replica", metadata: ["replica": "\(key)", "error": "\(error)"])
        }
    }

    /// The replica's object is gone: stop its process, nothing left to report.
    func removed(namespace: String, name: String) {
        let key = "\(namespace)/\(name)"
        guard let entry = runners.removeValue(forKey: key) else { return }
        Task {
            await entry.runner.abandonStatus()
            await entry.runner.stop()
            entry.task.cancel()
            await entry.task.value
        }
    }

    /// Replicas present in a fresh list: anything else this node runs is no longer assigned here.
    func resync(_ replicas: [Replica]) {
        let mine = Set(replicas.filter { $0.spec.node == context.configuration.nodeName }.map { "\($0.namespace)/\($0.name)" })
        for key in runners.keys where !mine.contains(key) {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            removed(namespace: parts[0], name: parts[1])
        }
        for replica in replicas { observe(replica) }
    }

    private func terminate(_ key: String, replica: Replica, removeObject: Bool) {
        guard !finishing.contains(key) else { return }
        finishing.insert(key)
        let entry = runners.removeValue(forKey: key)
        let client = context.client
        let logger = context.logger
        // A deleted replica that served traffic left its services' endpoints when it was marked; it keeps
        // running a moment so that every node proxy has stopped sending it requests before SIGTERM.
        let drain = removeObject && replica.status?.ready == true ? context.configuration.drainDelay : .zero
        Task {
            if let entry {
                if drain > .zero {
                    logger.info("draining replica before stopping it", metadata: ["replica": "\(key)", "delay": "\(drain)"])
                    try? await Task.sleep(for: drain)
                }
                logger.info("stopping replica", metadata: ["replica": "\(key)"])
                await entry.runner.stop()
                entry.task.cancel()
                await entry.task.value
                await entry.runner.abandonStatus()
            }
            if removeObject {
                await Self.removeObject(client: client, replica: replica, logger: logger)
            }
            self.finished(key)
        }
    }

    private func finished(_ key: String) { finishing.remove(key) }

    private static func removeObject(client: APIClient, replica: Replica, logger: Logger) async {
        var delay = RetryDelay(initial: .milliseconds(250))
        for _ in 0..<40 {
            do {
                try await client.delete(.replica, namespace: replica.namespace, name: replica.name, final: true)
                return
            } catch let error as APIError where error.status == 404 {
                return
            } catch {
                logger.debug("cannot remove replica object yet", metadata: ["replica": "\(replica.name)", "error": "\(error)"])
                try? await Task.sleep(for: delay.next())
            }
        }
    }

    /// Stops every replica (agent shutdown). Their objects stay: the next agent start runs them again.
    func stopAll() async {
        let entries = runners
        runners.removeAll()
        await withDiscardingTaskGroup { group in
            for (_, entry) in entries {
                group.addTask {
                    await entry.runner.stop()
                    entry.task.cancel()
                    await entry.task.value
                    await entry.runner.abandonStatus()
                }
            }
        }
    }
}
