import GRDB
import YunzhenMessaging

/// Registration's schema, one append-only list: never edit a shipped migration, add the next one.
public enum RegistrationMigrations {
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: departments") { db in
            try db.create(table: "department") { table in
                table.primaryKey("id", .text)
                table.column("name", .text).notNull()
                table.column("name_en", .text).notNull()
                table.column("description", .text).notNull().defaults(to: "")
                table.column("created_at", .datetime).notNull()
                table.column("updated_at", .datetime).notNull()
            }
        }
        Outbox.registerMigration(in: &migrator)
        return migrator
    }
}
