import GRDB

/// Consult's schema, one append-only list: never edit a shipped migration, add the next one.
/// Its first tables arrive with the first feature that stores something.
public enum ConsultMigrations {
    public static var migrator: DatabaseMigrator {
        DatabaseMigrator()
    }
}
