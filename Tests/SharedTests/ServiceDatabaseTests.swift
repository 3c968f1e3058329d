import Foundation
import GRDB
import Logging
import Testing
import YunzhenStorage
import YunzhenTesting

@Suite struct ServiceDatabaseTests {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "parent") { $0.primaryKey("id", .integer) }
            try db.create(table: "child") { table in
                table.primaryKey("id", .integer)
                table.belongsTo("parent").notNull()
            }
        }
        return migrator
    }

    @Test func opensInWALWithFullSyncAndForeignKeys() async throws {
        try await withTemporaryDirectory { directory in
            let database = try ServiceDatabase.open(
                directory: directory.appendingPathComponent("svc"),
                name: "svc",
                migrator: Self.migrator,
                logger: Logger(label: "test")
            )
            let (journal, synchronous, foreignKeys) = try await database.writer.write { db in
                (
                    try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                    try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                    try Int.fetchOne(db, sql: "PRAGMA foreign_keys")
                )
            }
            #expect(journal == "wal")
            #expect(synchronous == 2)  // FULL
            #expect(foreignKeys == 1)
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("svc/svc.sqlite").path))
            await #expect(database.isReady())
            // Foreign keys are enforced: a child of no parent is refused.
            await #expect(throws: DatabaseError.self) {
                try await database.writer.write { db in
                    try db.execute(sql: "INSERT INTO child (id, parentId) VALUES (1, 42)")
                }
            }
        }
    }

    @Test func reopeningKeepsDataAndAppliesOnlyNewMigrations() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let first = try ServiceDatabase.open(
                    directory: directory, name: "svc", migrator: Self.migrator, logger: Logger(label: "t"))
                try await first.writer.write { db in try db.execute(sql: "INSERT INTO parent (id) VALUES (7)") }
            }
            var extended = Self.migrator
            extended.registerMigration("v2") { db in try db.alter(table: "parent") { $0.add(column: "name", .text) } }
            let second = try ServiceDatabase.open(
                directory: directory, name: "svc", migrator: extended, logger: Logger(label: "t"))
            let count = try await second.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM parent") }
            #expect(count == 1)
            await #expect(second.isReady())
        }
    }

    @Test func notReadyWhileAMigrationIsMissing() async throws {
        let database = try ServiceDatabase.inMemory(migrator: Self.migrator)
        await #expect(database.isReady())
        try await database.writer.write { db in try db.execute(sql: "DELETE FROM grdb_migrations") }
        await #expect(!database.isReady())
    }
}
