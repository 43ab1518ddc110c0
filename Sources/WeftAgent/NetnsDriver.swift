import Foundation
import Logging
import Synchronization
import WeftCore
import WeftRuntime

/// The netns driver of a node: the node bridge, the pod address book (`pod-network.json` in the agent's
/// state directory, written atomically with mode 0600 before anything is created for an address, so a
/// restarted agent never hands out an address twice and finds what to remove after a crash), and one
/// sandbox per replica incarnation.
final class NetnsDriver: Sendable {
    let bridge: NodeBridge
    let serviceBlock: IPv4CIDR?
    private let nodeName: String
    private let clusterDomain: String
    private let path: String
    private let book: Mutex<PodAddressBook>
    /// Sandboxes are made one at a time: concurrent first `ip netns add` calls on a machine where
    /// /run/netns is not yet a mount point can each mount it, and the lower mount hides namespaces.
    private let creating = SerialTurns()
    private let logger: Logger

    /// The state file's name in the agent's state directory.
    static let stateFile = "pod-network.json"

    /// Loads the address book; `serviceBlock` is the cluster's VIP block when it must be made local to
    /// the node (outside 127.0.0.0/8, which needs no route).
    init(network: PodNetwork, ipPath: String, serviceBlock: IPv4CIDR?, nodeName: String, clusterDomain: String,
         stateDirectory: String, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.bridge = NodeBridge(ip: IPRoute(path: ipPath, logger: logger), network: network)
        self.serviceBlock = serviceBlock.flatMap { $0.isLoopback ? nil : $0 }
        self.nodeName = nodeName
        self.clusterDomain = clusterDomain
        self.path = (stateDirectory as NSString).appendingPathComponent(Self.stateFile)
        self.logger = logger
        var loaded = PodAddressBook()
        if let data = FileManager.default.contents(atPath: path) {
            do {
                loaded = try JSONDecoder().decode(PodAddressBook.self, from: data)
            } catch {
                throw RuntimeError(code: .network, message: "cannot read the pod address book \(path): \(error); it records which addresses replicas hold — repair it, or remove it after deleting every weft-* network namespace on this node (ip netns list)")
            }
        }
        self.book = Mutex(loaded)
    }

    /// The pod network.
    var network: PodNetwork { bridge.network }

    /// Where replicas send DNS queries: the bridge address, port 53 (resolv.conf has no port).
    var dnsAddress: String { "\(network.gateway):53" }

    /// Removes every namespace and interface a previous agent left (recorded in the address book, whose
    /// processes the process ledger has already stopped), frees their addresses, then sets up the bridge
    /// and the VIP route. Run before any replica starts.
    func prepareNode() async throws {
        let leftovers = book.withLock { $0.allocations }
        for (address, allocation) in leftovers.sorted(by: { $0.key < $1.key }) {
            let problems = await PodSandbox.remove(namespace: allocation.sandbox, hostInterface: allocation.hostInterface, ip: bridge.ip)
            guard problems.isEmpty else {
                logger.error("cannot remove the network namespace of a replica left by a previous agent; its address stays reserved",
                             metadata: ["replica": "\(allocation.replica)", "namespace": "\(allocation.sandbox)", "address": "\(address)",
                                        "problems": "\(problems)"])
                continue
            }
            logger.info("removed the network namespace of a replica left by a previous agent",
                        metadata: ["replica": "\(allocation.replica)", "namespace": "\(allocation.sandbox)", "address": "\(address)"])
            book.withLock { book in
                book.release(address)
                save(book)
            }
        }
        do {
            try await bridge.setUp()
            if let serviceBlock { try await bridge.routeServiceBlock(serviceBlock) }
        } catch {
            throw RuntimeError(code: .network, message: "cannot set up the node bridge \(NodeBridge.name) for pod network \(network): \(error)")
        }
    }

    /// For an agent started without a pod network after one that had it: removes the namespaces and
    /// interfaces recorded in the state directory's address book, then the book. Nothing to do when
    /// there is no book; a book that cannot be read is left for the operator.
    static func removeLeftovers(stateDirectory: String, ipPath: String, logger: Logger) async {
        let path = (stateDirectory as NSString).appendingPathComponent(stateFile)
        guard let data = FileManager.default.contents(atPath: path) else { return }
        guard let book = try? JSONDecoder().decode(PodAddressBook.self, from: data) else {
            logger.warning("cannot read the pod address book; network namespaces of an earlier agent may remain", metadata: ["path": "\(path)"])
            return
        }
        let ip = IPRoute(path: ipPath, logger: logger)
        for (address, allocation) in book.allocations.sorted(by: { $0.key < $1.key }) {
            await PodSandbox.remove(namespace: allocation.sandbox, hostInterface: allocation.hostInterface, ip: ip)
            logger.info("removed the network namespace of a replica left by a previous agent",
                        metadata: ["replica": "\(allocation.replica)", "namespace": "\(allocation.sandbox)", "address": "\(address)"])
        }
        await ip.attempt(["link", "del", NodeBridge.name])
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removes the bridge and the VIP route (every sandbox must be gone already).
    func tearDownNode() async {
        await bridge.tearDown(serviceBlock: serviceBlock)
    }

    /// Allocates an address for `replica` (`namespace/name`) and creates its sandbox with a resolv.conf
    /// for `namespace`; the address is recorded before anything is created.
    func createSandbox(replica: String, namespace: String) async throws -> PodSandbox {
        let (address, _) = try book.withLock { book in
            let result = try book.allocate(in: network, replica: replica) {
                PodSandboxNames(node: nodeName, replica: replica, address: $0)
            }
            save(book)
            return result
        }
        let sandbox = PodSandbox(names: PodSandboxNames(node: nodeName, replica: replica, address: address), address: address)
        await creating.begin()
        do {
            try await sandbox.create(bridge: bridge, resolvConf: PodResolvConf.text(nameserver: network.gateway, namespace: namespace,
                                                                                    clusterDomain: clusterDomain))
        } catch {
            creating.end()
            release(address)
            throw error
        }
        creating.end()
        return sandbox
    }

    /// Deletes a sandbox and frees its address.
    func removeSandbox(_ sandbox: PodSandbox) async {
        let problems = await PodSandbox.remove(namespace: sandbox.names.namespace, hostInterface: sandbox.names.hostInterface, ip: bridge.ip)
        guard problems.isEmpty else {
            // The address stays recorded: it is not handed out while it may still be configured, and the
            // next agent start tries the removal again.
            logger.error("cannot remove a replica's network namespace; its address stays reserved until the agent restarts", metadata: [
                "namespace": "\(sandbox.names.namespace)", "interface": "\(sandbox.names.hostInterface)",
                "address": "\(sandbox.address)", "problems": "\(problems)"])
            return
        }
        release(sandbox.address)
    }

    private func release(_ address: IPv4Address) {
        book.withLock { book in
            book.release(address.description)
            save(book)
        }
    }

    /// Writes the book atomically; called with the lock held so concurrent changes are written in order.
    private func save(_ snapshot: PodAddressBook) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let data = try encoder.encode(snapshot)
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            logger.error("cannot write the pod address book; a crash now could leave network namespaces behind or hand out an address twice",
                         metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

/// Lets one task at a time through (`begin` … `end`), in the order they arrived; an async mutex.
final class SerialTurns: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Waits until no other task is between `begin` and `end`.
    func begin() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let proceed = state.withLock { state in
                if state.busy {
                    state.waiting.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if proceed { continuation.resume() }
        }
    }

    /// Hands the turn to the next waiting task, if any.
    func end() {
        let next = state.withLock { state in
            if state.waiting.isEmpty {
                state.busy = false
                return nil as CheckedContinuation<Void, Never>?
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
