import Foundation
import GRDB
import YunzhenContracts

/// The tables a consuming service keeps in its own database: its position in each topic and its dead letters.
public enum ConsumerSchema {
    static let offsets = "queue_consumer_offset"
    static let deadLetters = "queue_dead_letter"

    public static func registerMigration(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("queue: consumer offsets and dead letters") { db in
            try db.create(table: offsets) { table in
                table.column("consumer", .text).notNull()
                table.column("topic", .text).notNull()
                table.column("next_offset", .integer).notNull()
                table.primaryKey(["consumer", "topic"])
            }
            try db.create(table: deadLetters) { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("consumer", .text).notNull()
                table.column("topic", .text).notNull()
                table.column("offset", .integer).notNull()
                table.column("event_id", .text)
                table.column("event_type", .text)
                table.column("event", .blob).notNull()
                table.column("error", .text).notNull()
                table.column("attempts", .integer).notNull()
                table.column("failed_at", .datetime).notNull()
                table.column("retried_at", .datetime)
            }
        }
        // An operator's retry is carried out by the consuming service (only it has the handler): the request is
        // a mark in the row, which the consumer clears when it has tried.
        migrator.registerMigration("queue: dead-letter retry requests") { db in
            try db.alter(table: deadLetters) { table in
                table.add(column: "retry_requested_at", .datetime)
            }
        }
    }
}

/// A dead letter as an operator sees it.
public struct DeadLetter: Sendable, Equatable, Codable {
    public var id: Int64
    public var consumer: String
    public var topic: String
    public var offset: UInt64
    public var eventID: String?
    public var eventType: String?
    public var error: String
    public var attempts: Int
    public var failedAt: Date
    public var retriedAt: Date?
    /// Set while an operator's retry waits for the consumer.
    public var retryRequestedAt: Date?
}

/// Listing and retrying dead letters (for the `yunzhen queue` tool and operators' APIs).
public struct DeadLetters: Sendable {
    let database: any DatabaseWriter

    public init(database: any DatabaseWriter) { self.database = database }

    /// Dead letters not yet retried successfully, oldest first.
    public func pending(consumer: String? = nil) async throws -> [DeadLetter] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM \(ConsumerSchema.deadLetters)
                    WHERE retried_at IS NULL AND (? IS NULL OR consumer = ?) ORDER BY id
                    """,
                arguments: [consumer, consumer]
            ).map(Self.deadLetter)
        }
    }

    static func deadLetter(_ row: Row) -> DeadLetter {
        DeadLetter(
            id: row["id"],
            consumer: row["consumer"],
            topic: row["topic"],
            offset: UInt64(row["offset"] as Int64),
            eventID: row["event_id"],
            eventType: row["event_type"],
            error: row["error"],
            attempts: row["attempts"],
            failedAt: row["failed_at"],
            retriedAt: row["retried_at"],
            retryRequestedAt: row["retry_requested_at"]
        )
    }

    /// Runs `handler` on dead letter `id` again; on success marks it retried, in the same transaction.
    /// Throws the handler's error when it fails again (the dead letter stays).
    public func retry(id: Int64, with handler: QueueConsumer.Handler) async throws {
        try await database.write { db in try Self.retry(id: id, with: handler, in: db) }
    }

    /// Asks the running consumer to retry dead letter `id` (or, with nil, every pending one of `consumer`) at its
    /// next poll; returns the ids asked for. For the operator's tool, which has no handler of its own.
    public func requestRetry(id: Int64?, consumer: String? = nil) async throws -> [Int64] {
        try await database.write { db in
            let ids = try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM \(ConsumerSchema.deadLetters)
                    WHERE retried_at IS NULL AND (? IS NULL OR id = ?) AND (? IS NULL OR consumer = ?) ORDER BY id
                    """,
                arguments: [id, id, consumer, consumer])
            if let id, ids.isEmpty { throw DeadLetterError.notFound(id) }
            for id in ids {
                try db.execute(
                    sql: "UPDATE \(ConsumerSchema.deadLetters) SET retry_requested_at = ? WHERE id = ?",
                    arguments: [Date(), id])
            }
            return ids
        }
    }

    /// Dead letter `id` as it stands now.
    public func find(id: Int64) async throws -> DeadLetter? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM \(ConsumerSchema.deadLetters) WHERE id = ?", arguments: [id])
                .map(Self.deadLetter)
        }
    }

    static func retry(id: Int64, with handler: QueueConsumer.Handler, in db: Database) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM \(ConsumerSchema.deadLetters) WHERE id = ?", arguments: [id])
        else {
            throw DeadLetterError.notFound(id)
        }
        let bytes = Array(row["event"] as Data)
        guard let header = try? EventCoding.decoder.decode(CloudEventHeader.self, from: Data(bytes)) else {
            throw DeadLetterError.damaged(id)
        }
        try handler(
            ConsumedEvent(topic: row["topic"], offset: UInt64(row["offset"] as Int64), header: header, bytes: bytes),
            db)
        try db.execute(
            sql: """
                UPDATE \(ConsumerSchema.deadLetters)
                SET retried_at = ?, attempts = attempts + 1, retry_requested_at = NULL WHERE id = ?
                """,
            arguments: [Date(), id]
        )
    }

    static func recordFailedRetry(id: Int64, error: String, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE \(ConsumerSchema.deadLetters)
                SET error = ?, attempts = attempts + 1, failed_at = ?, retry_requested_at = NULL WHERE id = ?
                """,
            arguments: [error, Date(), id]
        )
    }
}

public enum DeadLetterError: Error, Equatable {
    case notFound(Int64)
    case damaged(Int64)
}
