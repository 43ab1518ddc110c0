import Foundation
import GRDB
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The store in one SQLite file (WAL mode, via GRDB): objects, a cluster-wide revision, and the retained
/// event history that watches resume from.
///
/// Every committed write gets the next revision. Watchers receive each matching event exactly once, in
/// strictly increasing revision order: history first (read page by page at the consumer's pace), then
/// live events, which are published from inside the database writer's serial queue right after each
/// commit. A live watcher that falls more than `watchBufferLimit` events behind is ended with
/// ``StoreError/Code/compacted`` ("re-list") instead of buffering without bound.
public final class SQLiteStore: ObjectStore, Sendable {
    /// The database file's path.
    public let path: String
    /// How many of the newest events are kept for resuming watches.
    public let retainedEvents: Int
    /// How many live events a watcher may have waiting before it is ended as too slow.
    public let watchBufferLimit: Int

    private let pool: DatabasePool
    private let hub: WatchHub
    private let logger: Logger
    private let closed = Mutex(false)
    /// Automatic compaction runs when this many events beyond `retainedEvents` have accumulated, so its
    /// cost (one DELETE of a contiguous revision range) is amortized over many commits.
    private let compactionSlack: Int64
    private static let historyPageSize = 512

    /// Opens the store at `path`, creating the file (mode 0600) and schema if needed; the directory must exist.
    public init(
        path: String,
        retainedEvents: Int = 100_000,
        watchBufferLimit: Int = 10_000,
        logger: Logger = Logger(label: "weft.store")
    ) throws {
        self.path = path
        self.retainedEvents = max(1, retainedEvents)
        self.watchBufferLimit = max(1, watchBufferLimit)
        self.compactionSlack = Int64(max(1, min(self.retainedEvents / 10, 10_000)))
        self.logger = logger

        try Self.createPrivateFile(path)
        var configuration = Configuration()
        configuration.label = "weft.store"
        configuration.prepareDatabase { db in
            // In WAL mode NORMAL survives a process crash (kill -9); only a power loss may drop the last
            // commits, never corrupt the file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try SQLiteSchema.migrator().migrate(pool)
            let meta = try pool.read { try SQLiteSchema.meta($0) }
            hub = WatchHub(revision: meta.revision)
            Self.restrictPermissions(path)
            logger.info(
                "store opened",
                metadata: [
                    "path": "\(path)", "revision": "\(meta.revision)", "compactedRevision": "\(meta.compactedRevision)",
                ])
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, message: "cannot open store database \(path): \(error)")
        }
    }

    deinit {
        // Without close(), live watchers would otherwise wait forever.
        hub.finishAll()
    }

    /// Returns the object at `key`, or nil if there is none.
    public func get(_ key: ObjectKey) async throws -> StoredObject? {
        try await perform {
            try await self.pool.read { try SQLiteSchema.object($0, key) }
        }
    }

    /// Lists one kind's objects (one namespace, or all when nil), ordered by namespace and name, from one
    /// snapshot, with that snapshot's store revision to watch from.
    public func list(kind: String, namespace: String?) async throws -> (items: [StoredObject], revision: Int64) {
        try await perform {
            try await self.pool.read { db in
                let items = try SQLiteSchema.objects(db, kind: kind, namespace: namespace)
                return (items, try SQLiteSchema.meta(db).revision)
            }
        }
    }

    /// Applies all writes in one transaction or none (the first failed precondition is thrown); each write
    /// gets its own revision, and the returned events are also delivered to watchers.
    @discardableResult
    public func commit(_ writes: [Write]) async throws -> [WatchEvent] {
        guard !writes.isEmpty else {
            try checkOpen()
            return []
        }
        return try await perform {
            try await self.pool.writeWithoutTransaction { db in
                var events: [WatchEvent] = []
                try db.inTransaction(.immediate) {
                    events = try SQLiteSchema.apply(writes, in: db)
                    return .commit
                }
                // Still on the writer's serial queue: publishing here orders live events exactly as commits.
                let dropped = self.hub.publish(events)
                if dropped > 0 {
                    self.logger.warning(
                        "ended slow watchers", metadata: ["count": "\(dropped)", "limit": "\(self.watchBufferLimit)"])
                }
                self.compactIfDue(db, revision: events[events.count - 1].revision)
                return events
            }
        }
    }

    /// The revision of the last committed change (0 for an empty store).
    public func currentRevision() async throws -> Int64 {
        try await perform {
            try await self.pool.read { try SQLiteSchema.meta($0).revision }
        }
    }

    /// The oldest revision a watch can resume after; older ones throw ``StoreError/Code/compacted``.
    public func compactedRevision() async throws -> Int64 {
        try await perform {
            try await self.pool.read { try SQLiteSchema.meta($0).compactedRevision }
        }
    }

    /// Drops all but the newest `retainedEvents` events now (commits also do this, in larger steps).
    public func compact() async throws {
        try await perform {
            try await self.pool.writeWithoutTransaction { db in
                let meta = try SQLiteSchema.meta(db)
                let target = meta.revision - Int64(self.retainedEvents)
                if target > meta.compactedRevision {
                    try db.inTransaction(.immediate) {
                        try SQLiteSchema.compact(db, through: target)
                        return .commit
                    }
                }
            }
        }
    }

    /// Streams every event with revision greater than `revision` that matches `kind` and `namespace` (nil
    /// matches all): retained history first, then live, in strictly increasing revision order.
    ///
    /// The stream throws ``StoreError/Code/compacted`` if `revision` is older than the retained history, or
    /// if the consumer falls more than `watchBufferLimit` live events behind; either way, re-list and watch
    /// from the list's revision. It finishes normally on ``close()``. One consumer per stream.
    public func watch(kind: String?, namespace: String?, after revision: Int64) -> AsyncThrowingStream<
        WatchEvent, Error
    > {
        if isClosed {
            return AsyncThrowingStream { $0.finish(throwing: StoreError(.closed, message: "the store is closed")) }
        }
        let pool = self.pool
        let session = WatchSession(
            id: hub.makeSessionID(),
            filter: WatchFilter(kind: kind, namespace: namespace),
            after: revision,
            capacity: watchBufferLimit,
            pageSize: Self.historyPageSize,
            hub: hub,
            readHistory: { filter, after, limit in
                do {
                    return try await pool.read { db in
                        let meta = try SQLiteSchema.meta(db)
                        return HistoryPage(
                            events: try SQLiteSchema.events(db, filter: filter, after: after, limit: limit),
                            snapshotRevision: meta.revision,
                            compactedRevision: meta.compactedRevision)
                    }
                } catch let error as StoreError {
                    throw error
                } catch {
                    throw StoreError(.io, message: "reading watch history failed: \(error)")
                }
            })
        let handle = WatchHandle(session)
        return AsyncThrowingStream(unfolding: { try await handle.session.next() })
    }

    /// Ends all watch streams (they finish normally after what they already buffered) and closes the
    /// database; waits for in-flight commits. Later calls throw ``StoreError/Code/closed``.
    public func close() async throws {
        let wasOpen = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard wasOpen else { return }
        hub.shutDown()
        defer { hub.finishAll() }
        do {
            // Waits for running reads and writes; in-flight commits still publish to joined watchers.
            // The wait blocks a thread, so it happens on a Dispatch thread: blocking the few Swift
            // concurrency threads here can starve the very reads it waits for (seen as a hang when
            // two stores closed at once on a 2-core machine).
            let pool = self.pool
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try pool.close() })
                }
            }
        } catch {
            throw StoreError(.io, message: "closing store database \(path) failed: \(error)")
        }
        logger.info("store closed", metadata: ["path": "\(path)"])
    }

    /// Watchers currently receiving live events (for tests and metrics).
    var liveWatcherCount: Int {
        hub.watcherCount
    }

    // MARK: - Internals

    private var isClosed: Bool {
        closed.withLock { $0 }
    }

    private func checkOpen() throws {
        if isClosed {
            throw StoreError(.closed, message: "the store is closed")
        }
    }

    private func perform<T>(_ body: () async throws -> T) async throws -> T {
        try checkOpen()
        do {
            return try await body()
        } catch let error as StoreError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            // GRDB interrupts the statement of a cancelled task; that is a cancellation, not a disk problem.
            if Task.isCancelled {
                throw CancellationError()
            }
            if isClosed {
                throw StoreError(.closed, message: "the store is closed")
            }
            throw StoreError(.io, message: "database operation failed: \(error)")
        }
    }

    /// Runs on the writer queue after a commit was published; never throws, since the commit already succeeded.
    private func compactIfDue(_ db: Database, revision: Int64) {
        do {
            let meta = try SQLiteSchema.meta(db)
            guard revision - meta.compactedRevision > Int64(retainedEvents) + compactionSlack else { return }
            let target = revision - Int64(retainedEvents)
            try db.inTransaction(.immediate) {
                try SQLiteSchema.compact(db, through: target)
                return .commit
            }
            logger.debug("compacted events", metadata: ["throughRevision": "\(target)"])
        } catch {
            logger.warning("event compaction failed; will retry on a later commit", metadata: ["error": "\(error)"])
        }
    }

    /// Creates the database file readable only by its owner before SQLite does; SQLite gives the -wal and
    /// -shm files the same mode as the database file. Avoids umask, which is process-wide.
    private static func createPrivateFile(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw StoreError(
                .io, message: "cannot create store database \(path): \(reason); check that the data directory exists")
        }
        _ = fchmod(fd, 0o600)
        closeDescriptor(fd)
    }

    /// Tightens files that existed before with a wider mode.
    private static func restrictPermissions(_ path: String) {
        for suffix in ["", "-wal", "-shm"] {
            _ = chmod(path + suffix, 0o600)
        }
    }
}

/// Outside the class, where `close` is not shadowed by ``SQLiteStore/close()``.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
