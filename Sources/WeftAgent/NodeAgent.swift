import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftClient
import WeftCore
import WeftRuntime

/// The node agent: registers its node, keeps its heartbeat, and runs the replicas the control plane
/// assigns to it, learning of them by watch. On shutdown it stops its replicas.
public struct NodeAgent: ServiceLifecycle.Service {
    let configuration: AgentConfiguration
    let client: APIClient
    let logger: Logger

    public init(configuration: AgentConfiguration, client: APIClient, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
    }

    public func run() async throws {
        let ledger = try ProcessLedger(directory: configuration.stateDirectory, logger: logger)
        await ledger.killLeftovers(grace: .seconds(5))
        let context = AgentContext(configuration: configuration, client: client, ports: PortAllocator(host: configuration.nodeAddress),
                                   ledger: ledger, backoff: RestartBackoff(), eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let supervisor = ReplicaSupervisor(context: context)
        await withDiscardingTaskGroup { group in
            group.addTask { await self.heartbeat() }
            group.addTask { await self.watchReplicas(supervisor) }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await supervisor.stopAll()
        logger.info("agent stopped its replicas")
    }

    private func nodeObject() -> Node {
        var metadata = ObjectMeta(name: configuration.nodeName)
        metadata.labels = configuration.labels.isEmpty ? nil : configuration.labels
        let capacity = ResourceList(cpu: String(ProcessInfo.processInfo.activeProcessorCount),
                                    memory: "\(ProcessInfo.processInfo.physicalMemory / 1024 / 1024)Mi")
        return Node(metadata: metadata, status: NodeStatus(ready: true, addresses: [configuration.nodeAddress], capacity: capacity,
                                                            lastHeartbeat: Date().formatted(.iso8601), version: weftVersion))
    }

    private func heartbeat() async {
        while !Task.isCancelled {
            do {
                try await client.putNode(nodeObject())
            } catch {
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// List, then watch from the list's revision; resume after errors, re-list when the history is gone.
    private func watchReplicas(_ supervisor: ReplicaSupervisor) async {
        var resourceVersion: String?
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                if resourceVersion == nil {
                    let (items, version) = try await client.list(Replica.self, namespace: nil)
                    await supervisor.resync(items)
                    resourceVersion = version
                }
                for try await event in client.watch(Replica.self, namespace: nil, resourceVersion: resourceVersion, node: configuration.nodeName) {
                    delay = .milliseconds(200)
                    switch event {
                    case .added(let replica), .modified(let replica):
                        resourceVersion = replica.metadata.resourceVersion ?? resourceVersion
                        await supervisor.observe(replica)
                    case .deleted(let replica):
                        resourceVersion = replica.metadata.resourceVersion ?? resourceVersion
                        await supervisor.removed(namespace: replica.namespace, name: replica.name)
                    case .bookmark(let version):
                        resourceVersion = version
                    }
                }
            } catch let error as APIError where error.status == 410 {
                logger.info("watch history is gone; listing again")
                resourceVersion = nil
                continue
            } catch {
                if Task.isCancelled { return }
                logger.warning("replica watch interrupted; resuming", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}

/// The version this build reports.
public let weftVersion = "0.1.0"
