import Foundation
import GRDB
import YunzhenContracts

/// The transactional outbox: an event is stored in the producing service's own database in the same transaction
/// as the change it reports, and `OutboxRelay` moves it to the service's topic after the commit. An event can
/// therefore never be published for a change that rolled back, nor lost for one that committed.
public enum Outbox {
    static let table = "queue_outbox"

    /// Adds the outbox table to a service's migrator (append-only, like every migration).
    public static func registerMigration(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("queue: outbox") { db in
            // AUTOINCREMENT: ids are never reused after deletes, so they order events for the relay forever.
            try db.create(table: table) { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("event", .blob).notNull()
                table.column("created_at", .datetime).notNull()
            }
        }
    }

    /// Records `event` for publication. `db` must be inside the write transaction that makes the change the
    /// event reports (GRDB's `write { db in … }`); anything else is refused.
    public static func publish<Event: IntegrationEvent>(_ event: Event, source: String, in db: Database) throws {
        guard db.isInsideTransaction else { throw OutboxError.notInTransaction(Event.eventType) }
        let envelope = CloudEvent(source: source, event: event)
        let bytes = try EventCoding.encoder.encode(envelope)
        try db.execute(
            sql: "INSERT INTO \(table) (event, created_at) VALUES (?, ?)",
            arguments: [bytes, Date()]
        )
    }
}

public enum OutboxError: Error, CustomStringConvertible {
    case notInTransaction(String)

    public var description: String {
        switch self {
        case .notInTransaction(let type):
            "\(type) must be published inside the transaction that makes its change (use writer.write { db in … })"
        }
    }
}
