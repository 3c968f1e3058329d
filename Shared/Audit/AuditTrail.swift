import Crypto
import Foundation
import GRDB

/// One access to patient data (or to the audit trail itself), as the audit trail records it.
public struct AuditEntry: Sendable, Equatable {
    public var actor: String
    public var actorRole: String
    /// The patient whose data it was, when it was a patient's.
    public var patientID: String?
    public var action: AuditAction
    public var resourceType: String
    public var resourceID: String?
    public var requestID: String?
    public var clientAddress: String?
    public var outcome: AuditOutcome
    /// Set when staff reached the patient without a relationship, through break-glass access: the reason they
    /// wrote. Such rows are what an auditor reviews first.
    public var breakGlassReason: String?

    public init(
        actor: String, actorRole: String, patientID: String?, action: AuditAction, resourceType: String,
        resourceID: String?, requestID: String?, clientAddress: String?, outcome: AuditOutcome,
        breakGlassReason: String? = nil
    ) {
        self.actor = actor
        self.actorRole = actorRole
        self.patientID = patientID
        self.action = action
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.requestID = requestID
        self.clientAddress = clientAddress
        self.outcome = outcome
        self.breakGlassReason = breakGlassReason
    }
}

public enum AuditAction: String, Codable, Sendable, CaseIterable {
    case read, create, update, delete, export
}

public enum AuditOutcome: String, Codable, Sendable, CaseIterable {
    case success
    /// The caller was refused (no relationship, wrong role).
    case denied
    case failed
}

/// A row of the trail as stored.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var at: String
    public var actor: String
    public var actorRole: String
    public var patientID: String?
    public var action: String
    public var resourceType: String
    public var resourceID: String?
    public var requestID: String?
    public var clientAddress: String?
    public var outcome: String
    public var breakGlassReason: String?
    public var previousHash: String
    public var hash: String
}

/// What `verify` found.
public struct AuditVerification: Sendable, Equatable, Codable {
    public var rows: Int
    public var intact: Bool
    /// The first row whose hash or link does not match: it, or the row before it, was changed or removed.
    public var firstBrokenID: Int64?
    /// The hash of the last row: written down elsewhere (a log, a ticket), it also shows if rows are later cut
    /// from the end, which a chain alone cannot.
    public var headHash: String
}

/// Filters for paging through the trail; all optional.
public struct AuditQuery: Sendable, Equatable {
    public var patientID: String?
    public var actor: String?
    public var from: Date?
    public var to: Date?
    /// Rows after this id (the last id of the previous page).
    public var after: Int64?
    public var limit: Int

    public init(
        patientID: String? = nil, actor: String? = nil, from: Date? = nil, to: Date? = nil, after: Int64? = nil,
        limit: Int = 100
    ) {
        self.patientID = patientID
        self.actor = actor
        self.from = from
        self.to = to
        self.after = after
        self.limit = limit
    }
}

/// The audit trail of a service: an append-only table in the service's own database, each row carrying the
/// SHA-256 of the one before, so editing or deleting a row in place shows when the chain is verified.
///
/// Rows are written in the same transaction as the access they record (for a read, a write transaction around
/// the read), so there is no access without its row. Triggers refuse UPDATE and DELETE; the chain catches a
/// change made around them (with the sqlite3 shell, say).
public enum AuditTrail {
    static let table = "audit_log"
    static let genesis = String(repeating: "0", count: 64)

    public static func registerMigration(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("audit: trail") { db in
            try db.create(table: table) { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("at", .text).notNull()
                table.column("actor", .text).notNull()
                table.column("actor_role", .text).notNull()
                table.column("patient_id", .text)
                table.column("action", .text).notNull()
                table.column("resource_type", .text).notNull()
                table.column("resource_id", .text)
                table.column("request_id", .text)
                table.column("client_address", .text)
                table.column("outcome", .text).notNull()
                table.column("break_glass_reason", .text)
                table.column("previous_hash", .text).notNull()
                table.column("hash", .text).notNull()
            }
            try db.create(index: "audit_log_patient", on: table, columns: ["patient_id", "id"])
            try db.create(index: "audit_log_actor", on: table, columns: ["actor", "id"])
            for operation in ["UPDATE", "DELETE"] {
                try db.execute(
                    sql: """
                        CREATE TRIGGER audit_log_no_\(operation.lowercased()) BEFORE \(operation) ON \(table)
                        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END
                        """)
            }
        }
    }

    /// Appends `entry`. `db` must be in the transaction of the access it records.
    @discardableResult
    public static func record(_ entry: AuditEntry, at date: Date = Date(), in db: Database) throws -> AuditRecord {
        precondition(db.isInsideTransaction, "an audit row belongs in the transaction of the access it records")
        let previous = try String.fetchOne(db, sql: "SELECT hash FROM \(table) ORDER BY id DESC LIMIT 1") ?? genesis
        let id =
            (try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = ?", arguments: [table]) ?? 0) + 1
        var record = AuditRecord(
            id: id, at: timestamp(date), actor: entry.actor, actorRole: entry.actorRole, patientID: entry.patientID,
            action: entry.action.rawValue, resourceType: entry.resourceType, resourceID: entry.resourceID,
            requestID: entry.requestID, clientAddress: entry.clientAddress, outcome: entry.outcome.rawValue,
            breakGlassReason: entry.breakGlassReason, previousHash: previous, hash: "")
        record.hash = hash(of: record)
        try db.execute(
            sql: """
                INSERT INTO \(table) (id, at, actor, actor_role, patient_id, action, resource_type, resource_id,
                    request_id, client_address, outcome, break_glass_reason, previous_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.id, record.at, record.actor, record.actorRole, record.patientID, record.action,
                record.resourceType, record.resourceID, record.requestID, record.clientAddress, record.outcome,
                record.breakGlassReason, record.previousHash, record.hash,
            ])
        return record
    }

    /// Recomputes every row's hash and link, oldest first.
    public static func verify(in db: Database) throws -> AuditVerification {
        var expectedPrevious = genesis
        var rows = 0
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM \(table) ORDER BY id")
        while let row = try cursor.next() {
            let record = self.record(row)
            rows += 1
            guard record.previousHash == expectedPrevious, hash(of: record) == record.hash else {
                return AuditVerification(rows: rows, intact: false, firstBrokenID: record.id, headHash: record.hash)
            }
            expectedPrevious = record.hash
        }
        return AuditVerification(rows: rows, intact: true, firstBrokenID: nil, headHash: expectedPrevious)
    }

    /// A page of rows matching `query`, oldest first.
    public static func page(_ query: AuditQuery, in db: Database) throws -> [AuditRecord] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let patientID = query.patientID {
            conditions.append("patient_id = ?")
            _ = arguments.append(contentsOf: [patientID])
        }
        if let actor = query.actor {
            conditions.append("actor = ?")
            _ = arguments.append(contentsOf: [actor])
        }
        if let from = query.from {
            conditions.append("at >= ?")
            _ = arguments.append(contentsOf: [timestamp(from)])
        }
        if let to = query.to {
            conditions.append("at < ?")
            _ = arguments.append(contentsOf: [timestamp(to)])
        }
        if let after = query.after {
            conditions.append("id > ?")
            _ = arguments.append(contentsOf: [after])
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        _ = arguments.append(contentsOf: [max(1, min(query.limit, 1000))])
        return try Row.fetchAll(db, sql: "SELECT * FROM \(table) \(filter) ORDER BY id LIMIT ?", arguments: arguments)
            .map(record)
    }

    static func record(_ row: Row) -> AuditRecord {
        AuditRecord(
            id: row["id"], at: row["at"], actor: row["actor"], actorRole: row["actor_role"],
            patientID: row["patient_id"], action: row["action"], resourceType: row["resource_type"],
            resourceID: row["resource_id"], requestID: row["request_id"], clientAddress: row["client_address"],
            outcome: row["outcome"], breakGlassReason: row["break_glass_reason"],
            previousHash: row["previous_hash"], hash: row["hash"])
    }

    /// SHA-256 over the row's fields (the id and the previous hash included) as a JSON array: unambiguous, since
    /// every field is quoted and escaped, and the same in any language that re-verifies the trail.
    static func hash(of record: AuditRecord) -> String {
        let fields: [String?] = [
            String(record.id), record.at, record.actor, record.actorRole, record.patientID, record.action,
            record.resourceType, record.resourceID, record.requestID, record.clientAddress, record.outcome,
            record.breakGlassReason, record.previousHash,
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let bytes = (try? encoder.encode(fields)) ?? Data()
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// UTC with milliseconds, fixed width, so text order is time order.
    static func timestamp(_ date: Date) -> String {
        var formatter = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        formatter.timeZone = TimeZone(identifier: "UTC")!
        return date.formatted(formatter)
    }
}
