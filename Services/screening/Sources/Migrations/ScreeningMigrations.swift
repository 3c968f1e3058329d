import GRDB
import YunzhenAudit
import YunzhenMessaging

/// Screening's schema, one append-only list: never edit a shipped migration, add the next one.
public enum ScreeningMigrations {
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        AuditTrail.registerMigration(in: &migrator)
        Outbox.registerMigration(in: &migrator)
        ConsumerSchema.registerMigration(in: &migrator)
        migrator.registerMigration("v1: questionnaires, screenings, answers") { db in
            // Each published version of the questionnaire with its rules, as JSON; never changed once published.
            try db.create(table: "questionnaire") { table in
                table.primaryKey("version", .integer)
                table.column("content", .text).notNull()
                // SHA-256 of the content: publishing the same questionnaire again is refused.
                table.column("checksum", .text).notNull().unique()
                table.column("published_at", .datetime).notNull()
                table.column("published_by", .text).notNull()
            }
            // One screening per confirmed appointment.
            try db.create(table: "screening") { table in
                table.primaryKey("id", .text)
                table.column("appointment_id", .text).notNull().unique()
                table.column("patient_id", .text).notNull().indexed()
                table.column("account_id", .text).notNull().indexed()
                table.column("visit_start", .datetime).notNull()
                table.column("visit_end", .datetime).notNull()
                table.column("opens_at", .datetime).notNull()
                table.column("closes_at", .datetime).notNull()
                // pending, passed, failed, cancelled
                table.column("status", .text).notNull()
                table.column("created_at", .datetime).notNull()
                table.column("cancelled_at", .datetime)
            }
            try db.create(table: "screening_answer") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("screening_id", .text).notNull().references("screening").unique()
                table.column("questionnaire_version", .integer).notNull().references("questionnaire")
                table.column("answers", .text).notNull()
                table.column("details", .text).notNull()
                table.column("rule_id", .text).notNull()
                table.column("outcome", .text).notNull()
                table.column("submitted_at", .datetime).notNull()
            }
        }
        return migrator
    }
}
