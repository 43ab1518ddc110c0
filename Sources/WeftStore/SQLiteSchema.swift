import Foundation
import GRDB

/// The on-disk layout and the row-level operations, all run inside a caller's transaction.
enum SQLiteSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // One row: the store revision survives deletes and compaction, so it cannot be derived.
            try db.execute(
                sql: """
                    CREATE TABLE store_meta (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        revision INTEGER NOT NULL,
                        compacted_revision INTEGER NOT NULL
                    );
                    INSERT INTO store_meta (id, revision, compacted_revision) VALUES (1, 0, 0);
                    CREATE TABLE objects (
                        id INTEGER PRIMARY KEY,
                        kind TEXT NOT NULL,
                        namespace TEXT NOT NULL,
                        name TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        created_revision INTEGER NOT NULL,
                        data BLOB
                    );
                    CREATE UNIQUE INDEX objects_by_key ON objects (kind, namespace, name);
                    CREATE TABLE events (
                        revision INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        namespace TEXT NOT NULL,
                        name TEXT NOT NULL,
                        created_revision INTEGER NOT NULL,
                        data BLOB
                    );
                    CREATE INDEX events_by_kind ON events (kind, revision);
                    """)
        }
        return migrator
    }

    struct Meta {
        var revision: Int64
        var compactedRevision: Int64
    }

    static func meta(_ db: Database) throws -> Meta {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT revision, compacted_revision FROM store_meta WHERE id = 1"))
        guard let row else {
            throw StoreError(.io, message: "store_meta row is missing; the database file is damaged")
        }
        return Meta(revision: row[0], compactedRevision: row[1])
    }

    static func object(_ db: Database, _ key: ObjectKey) throws -> StoredObject? {
        let row = try Row.fetchOne(
            db.cachedStatement(
                sql: "SELECT revision, created_revision, data FROM objects WHERE kind = ? AND namespace = ? AND name = ?"
            ),
            arguments: [key.kind, key.namespace, key.name])
        guard let row else { return nil }
        // SQLite binds an empty blob as NULL, so NULL reads back as empty data.
        return StoredObject(key: key, revision: row[0], createdRevision: row[1], data: row[2] ?? Data())
    }

    static func objects(_ db: Database, kind: String, namespace: String?) throws -> [StoredObject] {
        let rows: [Row]
        if let namespace {
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT kind, namespace, name, revision, created_revision, data FROM objects
                        WHERE kind = ? AND namespace = ? ORDER BY name
                        """),
                arguments: [kind, namespace])
        } else {
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT kind, namespace, name, revision, created_revision, data FROM objects
                        WHERE kind = ? ORDER BY namespace, name
                        """),
                arguments: [kind])
        }
        return rows.map { row in
            StoredObject(
                key: ObjectKey(kind: row[0], namespace: row[1], name: row[2]),
                revision: row[3], createdRevision: row[4], data: row[5] ?? Data())
        }
    }

    static func events(_ db: Database, filter: WatchFilter, after revision: Int64, limit: Int) throws -> [WatchEvent] {
        var sql = "SELECT revision, type, kind, namespace, name, created_revision, data FROM events WHERE revision > ?"
        var arguments: StatementArguments = [revision]
        if let kind = filter.kind {
            sql += " AND kind = ?"
            arguments += [kind]
        }
        if let namespace = filter.namespace {
            sql += " AND namespace = ?"
            arguments += [namespace]
        }
        sql += " ORDER BY revision LIMIT ?"
        arguments += [limit]
        return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).map { row in
            let revision: Int64 = row[0]
            let typeName: String = row[1]
            guard let type = WatchEventType(rawValue: typeName) else {
                throw StoreError(.io, message: "event \(revision) has unknown type \(typeName); the database file is damaged")
            }
            let object = StoredObject(
                key: ObjectKey(kind: row[2], namespace: row[3], name: row[4]),
                revision: revision, createdRevision: row[5], data: row[6] ?? Data())
            return WatchEvent(type: type, revision: revision, object: object)
        }
    }

    /// Applies a batch; any thrown error must roll the surrounding transaction back.
    static func apply(_ writes: [Write], in db: Database) throws -> [WatchEvent] {
        var revision = try meta(db).revision
        var events: [WatchEvent] = []
        events.reserveCapacity(writes.count)
        for write in writes {
            let key = write.key
            try validate(key)
            let existing = try object(db, key)
            revision += 1
            let event: WatchEvent
            switch write {
            case .create(_, let data):
                if existing != nil {
                    throw StoreError(.alreadyExists, key: key, message: "an object with this key already exists")
                }
                try db.cachedStatement(
                    sql: """
                        INSERT INTO objects (kind, namespace, name, revision, created_revision, data)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [key.kind, key.namespace, key.name, revision, revision, data])
                event = WatchEvent(
                    type: .added, revision: revision,
                    object: StoredObject(key: key, revision: revision, createdRevision: revision, data: data))
            case .update(_, let data, let ifRevision):
                let current = try precondition(existing, key: key, ifRevision: ifRevision)
                try db.cachedStatement(
                    sql: "UPDATE objects SET revision = ?, data = ? WHERE kind = ? AND namespace = ? AND name = ?"
                ).execute(arguments: [revision, data, key.kind, key.namespace, key.name])
                event = WatchEvent(
                    type: .modified, revision: revision,
                    object: StoredObject(
                        key: key, revision: revision, createdRevision: current.createdRevision, data: data))
            case .delete(_, let ifRevision):
                let current = try precondition(existing, key: key, ifRevision: ifRevision)
                try db.cachedStatement(
                    sql: "DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?"
                ).execute(arguments: [key.kind, key.namespace, key.name])
                event = WatchEvent(
                    type: .deleted, revision: revision,
                    object: StoredObject(
                        key: key, revision: revision, createdRevision: current.createdRevision, data: current.data))
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO events (revision, type, kind, namespace, name, created_revision, data)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                revision, event.type.rawValue, key.kind, key.namespace, key.name,
                event.object.createdRevision, event.object.data,
            ])
            events.append(event)
        }
        try db.cachedStatement(sql: "UPDATE store_meta SET revision = ? WHERE id = 1").execute(arguments: [revision])
        return events
    }

    /// Deletes events at or below `revision`, if that is past the current compaction point.
    static func compact(_ db: Database, through revision: Int64) throws {
        try db.cachedStatement(sql: "DELETE FROM events WHERE revision <= ?").execute(arguments: [revision])
        try db.cachedStatement(
            sql: "UPDATE store_meta SET compacted_revision = ? WHERE id = 1 AND compacted_revision < ?"
        ).execute(arguments: [revision, revision])
    }

    private static func validate(_ key: ObjectKey) throws {
        if key.kind.isEmpty || key.name.isEmpty {
            throw StoreError(.invalidArgument, key: key, message: "kind and name must not be empty")
        }
    }

    private static func precondition(_ existing: StoredObject?, key: ObjectKey, ifRevision: Int64?) throws
        -> StoredObject
    {
        guard let existing else {
            throw StoreError(.notFound, key: key, message: "no object with this key")
        }
        if let ifRevision, ifRevision != existing.revision {
            throw StoreError(
                .conflict, key: key,
                message: "expected revision \(ifRevision) but the object is at revision \(existing.revision); "
                    + "read it again and retry")
        }
        return existing
    }
}
