import Foundation
import Logging
import Synchronization
import WeftRuntime

/// The agent's record of the replica processes it started (`processes.json`), so that after a crash of
/// the agent the next one can stop what was left running instead of starting duplicates.
final class ProcessLedger: Sendable {
    private let path: String
    private let entries: Mutex<[String: ProcessIdentity]>
    private let logger: Logger

    init(directory: String, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.path = (directory as NSString).appendingPathComponent("processes.json")
        self.logger = logger
        var loaded: [String: ProcessIdentity] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            do {
                loaded = try JSONDecoder().decode([String: ProcessIdentity].self, from: data)
            } catch {
                logger.warning("ignoring unreadable process ledger", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        self.entries = Mutex(loaded)
    }

    /// Stops every process a previous agent left running and forgets them.
    func killLeftovers(grace: Duration) async {
        let leftovers = entries.withLock { $0 }
        await withDiscardingTaskGroup { group in
            for (replica, identity) in leftovers {
                group.addTask {
                    if await ReplicaProcess.killLeftover(identity, grace: grace) {
                        self.logger.info("stopped a replica process left by a previous agent", metadata: ["replica": "\(replica)", "process": "\(identity)"])
                    }
                }
            }
        }
        entries.withLock { entries in
            entries.removeAll()
            save(entries)
        }
    }

    func record(_ replica: String, _ identity: ProcessIdentity) {
        entries.withLock { entries in
            entries[replica] = identity
            save(entries)
        }
    }

    func forget(_ replica: String) {
        entries.withLock { entries in
            guard entries.removeValue(forKey: replica) != nil else { return }
            save(entries)
        }
    }

    /// Writes the ledger; called with the lock held so concurrent changes are written in order.
    private func save(_ snapshot: [String: ProcessIdentity]) {
        do {
            let data = try JSONEncoder().encode(snapshot)
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            logger.error("cannot write the process ledger; a crash now could leave replica processes running", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
