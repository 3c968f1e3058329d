import Foundation
import GRDB
import Logging

/// Opens a service's own SQLite database the one way every service does it: a GRDB `DatabasePool` in WAL mode
/// with `synchronous=FULL` (a committed transaction survives power loss), foreign keys, and a busy timeout, and
/// runs the service's append-only migrator before anything else touches it.
public struct ServiceDatabase: Sendable {
    /// The one writer of this process (GRDB: one `DatabaseWriter` per database per process).
    public let writer: any DatabaseWriter
    let migrator: DatabaseMigrator

    /// Opens (creating when needed) `<directory>/<name>.sqlite` and migrates it.
    public static func open(
        directory: URL,
        name: String,
        migrator: DatabaseMigrator,
        logger: Logger
    ) throws -> ServiceDatabase {
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            // Patient data: no access for other users (applies when the folder is created here).
            attributes: [.posixPermissions: 0o750]
        )
        let path = directory.appendingPathComponent("\(name).sqlite").path
        let pool = try DatabasePool(path: path, configuration: makeConfiguration())
        // Opening a pool switches its writer to WAL with `synchronous=NORMAL`, after `prepareDatabase` ran;
        // the writer is one long-lived connection, so setting it again here holds for the process's life.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try migrator.migrate(pool)
        logger.debug("database ready", metadata: ["path": "\(path)"])
        return ServiceDatabase(writer: pool, migrator: migrator)
    }

    /// An in-memory database with the real migrator, for tests.
    public static func inMemory(migrator: DatabaseMigrator) throws -> ServiceDatabase {
        let queue = try DatabaseQueue(configuration: makeConfiguration())
        try migrator.migrate(queue)
        return ServiceDatabase(writer: queue, migrator: migrator)
    }

    /// True when the database answers and every known migration has been applied.
    public func isReady() async -> Bool {
        do {
            return try await writer.read { db in try migrator.hasCompletedMigrations(db) }
        } catch {
            return false
        }
    }

    static func makeConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // WAL's default (NORMAL) may lose the last transactions on power loss; an acknowledged booking may not.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return configuration
    }
}
