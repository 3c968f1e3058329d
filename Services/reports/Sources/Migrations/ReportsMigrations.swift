import GRDB

/// Reports's schema, one append-only list: never edit a shipped migration, add the next one.
/// Its first tables arrive with the first feature that stores something.
public enum ReportsMigrations {
    public static var migrator: DatabaseMigrator {
        DatabaseMigrator()
    }
}
