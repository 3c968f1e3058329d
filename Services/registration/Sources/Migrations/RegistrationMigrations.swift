import GRDB
import YunzhenAudit
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
        migrator.registerMigration("v2: patient accounts, sign-in codes, refresh tokens") { db in
            try db.create(table: "account") { table in
                table.primaryKey("id", .text)
                table.column("phone", .text).notNull().unique()
                table.column("created_at", .datetime).notNull()
                table.column("last_sign_in_at", .datetime)
            }
            try db.create(table: "sign_in_code") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("phone", .text).notNull()
                table.column("salt", .text).notNull()
                table.column("code_hash", .text).notNull()
                table.column("sent_at", .datetime).notNull()
                table.column("expires_at", .datetime).notNull()
                table.column("attempts", .integer).notNull()
                table.column("used_at", .datetime)
                table.column("client_address", .text).notNull()
            }
            try db.create(index: "sign_in_code_phone", on: "sign_in_code", columns: ["phone", "sent_at"])
            try db.create(index: "sign_in_code_address", on: "sign_in_code", columns: ["client_address", "sent_at"])
            try db.create(table: "refresh_token") { table in
                table.primaryKey("id", .text)
                table.column("family_id", .text).notNull().indexed()
                table.column("account_id", .text).notNull().references("account")
                table.column("secret_hash", .text).notNull()
                table.column("issued_at", .datetime).notNull()
                table.column("expires_at", .datetime).notNull()
                table.column("replaced_at", .datetime)
                table.column("revoked_at", .datetime)
                table.column("revoked_reason", .text)
            }
        }
        AuditTrail.registerMigration(in: &migrator)
        migrator.registerMigration("v3: patients (an account's own profile and its family members)") { db in
            try db.create(table: "patient") { table in
                table.primaryKey("id", .text)
                table.column("account_id", .text).notNull().references("account").indexed()
                table.column("relationship", .text).notNull()
                table.column("name", .text).notNull()
                table.column("sex", .text).notNull()
                table.column("birth_date", .text).notNull()
                table.column("resident_id", .text)
                table.column("province", .text).notNull()
                table.column("phone", .text)
                table.column("created_at", .datetime).notNull()
                table.column("updated_at", .datetime).notNull()
            }
            // One own profile per account, and one person once per account: enforced by the database too.
            try db.execute(sql: "CREATE UNIQUE INDEX patient_self ON patient (account_id) WHERE relationship = 'self'")
            try db.execute(
                sql:
                    "CREATE UNIQUE INDEX patient_resident_id ON patient (account_id, resident_id) WHERE resident_id IS NOT NULL"
            )
        }
        migrator.registerMigration("v4: staff accounts; refresh tokens for patients and staff") { db in
            try db.create(table: "staff") { table in
                table.primaryKey("id", .text)
                table.column("username", .text).notNull().unique(onConflict: .abort)
                table.column("display_name", .text).notNull()
                // Comma-separated role names (doctor, nurse, pharmacist, scheduler, gate, admin).
                table.column("roles", .text).notNull()
                table.column("department_id", .text)
                table.column("password_hash", .text).notNull()
                table.column("must_change_password", .boolean).notNull()
                table.column("failed_attempts", .integer).notNull().defaults(to: 0)
                table.column("locked_until", .datetime)
                table.column("created_at", .datetime).notNull()
                table.column("created_by", .text).notNull()
                table.column("disabled_at", .datetime)
            }
            // Refresh tokens now belong to a patient account or a staff member: the foreign key to `account` goes.
            try db.create(table: "refresh_token_v4") { table in
                table.primaryKey("id", .text)
                table.column("family_id", .text).notNull().indexed()
                table.column("subject_kind", .text).notNull()
                table.column("account_id", .text).notNull()
                table.column("secret_hash", .text).notNull()
                table.column("issued_at", .datetime).notNull()
                table.column("expires_at", .datetime).notNull()
                table.column("replaced_at", .datetime)
                table.column("revoked_at", .datetime)
                table.column("revoked_reason", .text)
            }
            try db.execute(
                sql: """
                    INSERT INTO refresh_token_v4 (id, family_id, subject_kind, account_id, secret_hash, issued_at,
                        expires_at, replaced_at, revoked_at, revoked_reason)
                    SELECT id, family_id, 'patient', account_id, secret_hash, issued_at, expires_at, replaced_at,
                        revoked_at, revoked_reason FROM refresh_token
                    """)
            try db.drop(table: "refresh_token")
            try db.rename(table: "refresh_token_v4", to: "refresh_token")
        }
        migrator.registerMigration("v5: integrators and their API keys") { db in
            try db.create(table: "integrator") { table in
                table.primaryKey("id", .text)
                table.column("name", .text).notNull()
                table.column("created_at", .datetime).notNull()
                table.column("created_by", .text).notNull()
            }
            try db.create(table: "integrator_key") { table in
                table.primaryKey("id", .text)
                table.column("integrator_id", .text).notNull().references("integrator").indexed()
                table.column("secret_hash", .text).notNull()
                // Comma-separated event types the key may receive.
                table.column("event_types", .text).notNull()
                table.column("created_at", .datetime).notNull()
                table.column("created_by", .text).notNull()
                table.column("last_used_at", .datetime)
                table.column("revoked_at", .datetime)
            }
        }
        migrator.registerMigration("v6: staff in several departments, teams") { db in
            try db.create(table: "staff_department") { table in
                table.column("staff_id", .text).notNull().references("staff")
                table.column("department_id", .text).notNull().references("department").indexed()
                table.primaryKey(["staff_id", "department_id"])
            }
            try db.execute(
                sql: """
                    INSERT INTO staff_department (staff_id, department_id)
                    SELECT id, department_id FROM staff WHERE department_id IS NOT NULL
                    """)
            try db.alter(table: "staff") { table in table.drop(column: "department_id") }
            // A team (治疗组) belongs to one department: a chief physician's group that shares its patients,
            // triages, refers and hands over among its members.
            try db.create(table: "team") { table in
                table.primaryKey("id", .text)
                table.column("department_id", .text).notNull().references("department").indexed()
                table.column("name", .text).notNull()
                table.column("created_at", .datetime).notNull()
                table.column("created_by", .text).notNull()
                table.uniqueKey(["department_id", "name"])
            }
            try db.create(table: "team_member") { table in
                table.column("team_id", .text).notNull().references("team")
                table.column("staff_id", .text).notNull().references("staff").indexed()
                table.column("added_at", .datetime).notNull()
                table.primaryKey(["team_id", "staff_id"])
            }
        }
        migrator.registerMigration("v7: doctors, sessions, slots, appointments, payment orders") { db in
            try db.create(table: "doctor") { table in
                table.primaryKey("id", .text)
                // The staff account of the doctor, when they have one: how "an appointment with them" is known.
                table.column("staff_id", .text).unique().references("staff")
                table.column("department_id", .text).notNull().references("department").indexed()
                table.column("name", .text).notNull()
                // chief (主任医师), associate-chief (副主任医师), attending (主治医师)
                table.column("title", .text).notNull()
                // JSON array of strings
                table.column("specialties", .text).notNull()
                table.column("introduction", .text).notNull()
                table.column("photo", .blob)
                table.column("photo_type", .text)
                table.column("created_at", .datetime).notNull()
                table.column("updated_at", .datetime).notNull()
            }
            try db.create(table: "doctor_fee") { table in
                table.column("doctor_id", .text).notNull().references("doctor")
                table.column("visit_type", .text).notNull()
                table.column("fee_fen", .integer).notNull().check { $0 >= 0 }
                table.primaryKey(["doctor_id", "visit_type"])
            }
            try db.create(table: "session") { table in
                table.primaryKey("id", .text)
                table.column("doctor_id", .text).notNull().references("doctor")
                table.column("department_id", .text).notNull().references("department")
                // The hospital's local date, YYYY-MM-DD, and morning / afternoon / evening.
                table.column("date", .text).notNull()
                table.column("period", .text).notNull()
                table.column("starts_at", .datetime).notNull()
                table.column("ends_at", .datetime).notNull()
                table.column("visit_type", .text).notNull()
                table.column("fee_fen", .integer).notNull().check { $0 >= 0 }
                // places (numbered, no time) or timed (each slot has its own time)
                table.column("capacity_mode", .text).notNull()
                table.column("status", .text).notNull()
                table.column("stop_reason", .text)
                table.column("published_by", .text).notNull()
                table.column("created_at", .datetime).notNull()
                table.uniqueKey(["doctor_id", "date", "period", "visit_type"])
            }
            try db.create(index: "session_date", on: "session", columns: ["date", "department_id"])
            // A slot is one place of a session. `appointment_id` is the appointment holding it, or NULL when free:
            // taking a place is one UPDATE of a free slot, and the unique index makes a second holder impossible.
            try db.create(table: "slot") { table in
                table.primaryKey("id", .text)
                table.column("session_id", .text).notNull().references("session")
                table.column("visit_number", .integer).notNull()
                table.column("starts_at", .datetime).notNull()
                table.column("ends_at", .datetime).notNull()
                table.column("appointment_id", .text).unique()
                table.uniqueKey(["session_id", "visit_number"])
            }
            try db.execute(
                sql: "CREATE INDEX slot_free ON slot (session_id, visit_number) WHERE appointment_id IS NULL")
            try db.create(table: "appointment") { table in
                table.primaryKey("id", .text)
                table.column("session_id", .text).notNull().references("session")
                table.column("slot_id", .text).notNull().references("slot")
                table.column("patient_id", .text).notNull().references("patient").indexed()
                table.column("account_id", .text).notNull().references("account").indexed()
                table.column("channel", .text).notNull()
                // pending-payment, confirmed, checked-in, completed, no-show, cancelled
                table.column("status", .text).notNull()
                table.column("visit_number", .integer).notNull()
                table.column("fee_fen", .integer).notNull()
                table.column("hold_expires_at", .datetime).notNull()
                table.column("booked_at", .datetime).notNull()
                table.column("confirmed_at", .datetime)
                table.column("checked_in_at", .datetime)
                table.column("finished_at", .datetime)
                table.column("cancelled_at", .datetime)
                table.column("cancel_reason", .text)
                table.column("cancel_note", .text)
            }
            // One standing booking per patient per session: enforced by the database.
            try db.execute(
                sql: """
                    CREATE UNIQUE INDEX appointment_one_per_session ON appointment (session_id, patient_id)
                    WHERE status IN ('pending-payment', 'confirmed', 'checked-in')
                    """)
            try db.create(
                index: "appointment_hold", on: "appointment", columns: ["hold_expires_at"],
                condition: Column("status") == "pending-payment")
            // The no-show job reads the confirmed appointments only, not every appointment ever booked.
            try db.create(
                index: "appointment_confirmed", on: "appointment", columns: ["session_id"],
                condition: Column("status") == "confirmed")
            try db.create(table: "payment_order") { table in
                table.primaryKey("id", .text)
                table.column("appointment_id", .text).notNull().references("appointment").indexed()
                table.column("amount_fen", .integer).notNull().check { $0 >= 0 }
                table.column("gateway", .text).notNull()
                // created, paid, closed, refund-pending, refunded
                table.column("status", .text).notNull()
                table.column("transaction_id", .text)
                table.column("paid_at", .datetime)
                table.column("refund_id", .text).unique()
                table.column("refund_requested_at", .datetime)
                // When the gateway accepted the refund request (the refund itself is notified later).
                table.column("refund_accepted_at", .datetime)
                table.column("refunded_at", .datetime)
                // When the gateway confirmed a closed order closed, so a late payment is refused there.
                table.column("gateway_closed_at", .datetime)
                table.column("created_at", .datetime).notNull()
                // The last time the reconciliation job asked the gateway about this order.
                table.column("checked_at", .datetime)
            }
        }
        return migrator
    }
}
