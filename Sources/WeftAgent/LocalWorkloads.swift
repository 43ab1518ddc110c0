import NIOCore
import Synchronization
import WeftPKI
import WeftRuntime

/// The replica processes running on this node and their workload identities, so the node proxy can
/// tell which workload opened a connection: with the process driver every replica shares the node's
/// address, so the source address says nothing and the socket's owner is looked up instead. A replica
/// of the netns driver has an address of its own (its socket is in another namespace, out of the
/// lookup's reach), so its connections are known by their source address.
final class LocalWorkloads: Sendable {
    private let byProcess = Mutex<[Int32: SPIFFEID]>([:])
    private let byAddress = Mutex<[String: SPIFFEID]>([:])

    /// Records a started replica; `address` is its own IP when it has one (netns driver).
    func started(pid: Int32, identity: SPIFFEID, address: String? = nil) {
        if let address {
            byAddress.withLock { $0[address] = identity }
        } else {
            byProcess.withLock { $0[pid] = identity }
        }
    }

    func exited(pid: Int32, address: String? = nil) {
        if let address { _ = byAddress.withLock { $0.removeValue(forKey: address) } }
        _ = byProcess.withLock { $0.removeValue(forKey: pid) }
    }

    /// The workload whose process (or one of its children) holds the client end of the connection
    /// from `remote` to `local`; nil when no replica of this node does (a process outside the mesh).
    func identity(remote: SocketAddress?, local: SocketAddress?) -> SPIFFEID? {
        guard let remote, let local, let remoteIP = remote.ipAddress, let remotePort = remote.port,
              let localIP = local.ipAddress, let localPort = local.port else { return nil }
        if let identity = byAddress.withLock({ $0[remoteIP] }) { return identity }
        let processes = byProcess.withLock { $0 }
        guard !processes.isEmpty,
              let inode = SocketOwner.inode(localIP: remoteIP, localPort: remotePort, remoteIP: localIP, remotePort: localPort),
              let owner = SocketOwner.owner(ofInode: inode, among: Array(processes.keys))
        else { return nil }
        return processes[owner]
    }
}
