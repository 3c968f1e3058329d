import GRDB
import YunzhenAudit

/// Screening's schema, one append-only list: never edit a shipped migration, add the next one.
/// Its first table is the audit trail; the domain's arrive with the first feature that stores something.
public enum ScreeningMigrations {
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        AuditTrail.registerMigration(in: &migrator)
        return migrator
    }
}
