import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftClient
import WeftCore
import WeftProxy
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
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let proxy = NodeProxy(group: proxyGroup, logger: logger)
        let routing = ServiceRouting(proxy: proxy, logger: logger)
        await withDiscardingTaskGroup { group in
            group.addTask { await self.heartbeat() }
            group.addTask { await self.watchReplicas(supervisor) }
            group.addTask { await routing.run(client: self.client) }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await supervisor.stopAll()
        logger.info("agent stopped its replicas")
        await proxy.shutdown()
        try? await proxyGroup.shutdownGracefully()
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

    /// Runs the replicas assigned to this node, as the replica watch reports them.
    private func watchReplicas(_ supervisor: ReplicaSupervisor) async {
        await ListWatch(Replica.self, client: client, node: configuration.nodeName, logger: logger).run(
            relisted: { await supervisor.resync($0) },
            changed: { event in
                switch event {
                case .added(let replica), .modified(let replica):
                    await supervisor.observe(replica)
                case .deleted(let replica):
                    await supervisor.removed(namespace: replica.namespace, name: replica.name)
                case .bookmark:
                    break
                }
            })
    }
}

/// The version this build reports.
public let weftVersion = "0.1.0"
