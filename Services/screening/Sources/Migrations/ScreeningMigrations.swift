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
        migrator.registerMigration("v2: entry passes and gate checks") { db in
            // The keys that sign passes; the newest signs, every one still verifies.
            try db.create(table: "pass_key") { table in
                table.primaryKey("id", .text)
                table.column("secret", .blob).notNull()
                table.column("created_at", .datetime).notNull()
            }
            try db.create(table: "entry_pass") { table in
                table.primaryKey("id", .text)
                table.column("screening_id", .text).notNull().unique().references("screening")
                table.column("patient_id", .text).notNull().indexed()
                table.column("visit_date", .text).notNull()
                table.column("key_id", .text).notNull().references("pass_key")
                table.column("valid_from", .datetime).notNull()
                table.column("expires_at", .datetime).notNull()
                table.column("code", .text).notNull().unique()
                table.column("issued_at", .datetime).notNull()
                // The revocation list: a revoked pass is refused at every gate from then on.
                table.column("revoked_at", .datetime)
                table.column("revoked_reason", .text)
                table.column("revoked_by", .text)
            }
            // Every check at a door, admitted (`entered`) or refused (the problem code).
            try db.create(table: "gate_check") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("pass_id", .text).indexed()
                table.column("patient_id", .text)
                table.column("gate", .text)
                table.column("checked_by", .text).notNull()
                table.column("checked_at", .datetime).notNull()
                table.column("result", .text).notNull()
            }
        }
        migrator.registerMigration("v3: articles") { db in
            try db.create(table: "article") { table in
                table.primaryKey("id", .text)
                table.column("title", .text).notNull()
                table.column("title_en", .text)
                table.column("summary", .text)
                table.column("body", .text).notNull()
                // Rendered once when written, so that reading costs nothing.
                table.column("html", .text).notNull()
                // `|tag|tag|`
                table.column("tags", .text).notNull()
                table.column("cover", .blob)
                table.column("cover_type", .text)
                table.column("author", .text).notNull()
                // published, withdrawn
                table.column("status", .text).notNull()
                table.column("published_at", .datetime).notNull()
                table.column("updated_at", .datetime).notNull()
            }
            try db.create(index: "article_by_status_date", on: "article", columns: ["status", "published_at"])
        }
        migrator.registerMigration("v4: patients, epidemic consultations") { db in
            // Registration's patients as its events tell them: who manages whom, and the age and sex a doctor
            // answering an epidemic question needs (no names, no ID numbers).
            try db.create(table: "patient") { table in
                table.primaryKey("id", .text)
                table.column("account_id", .text).notNull().indexed()
                table.column("relationship", .text).notNull()
                table.column("birth_year", .integer).notNull()
                table.column("sex", .text).notNull()
            }
            try db.create(table: "epidemic_consultation") { table in
                table.primaryKey("id", .text)
                table.column("patient_id", .text).notNull().indexed()
                table.column("account_id", .text).notNull().indexed()
                table.column("topic", .text).notNull()
                table.column("question", .text).notNull()
                // open, taken
                table.column("status", .text).notNull()
                table.column("opened_at", .datetime).notNull()
                table.column("taken_by", .text)
                table.column("taken_at", .datetime)
            }
            try db.create(
                index: "epidemic_consultation_by_status", on: "epidemic_consultation", columns: ["status", "opened_at"])
        }
        return migrator
    }
}
