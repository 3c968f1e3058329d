import Foundation
import GRDB
import Hummingbird
import HummingbirdBcrypt
import Logging
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit

/// What admins do with staff accounts: create them with a temporary password, change their name, roles and
/// departments, disable and enable them, reset a forgotten password; and the teams (治疗组) of each department.
///
/// Changes of roles, departments and teams reach the staff member's tokens at their next refresh (within 15
/// minutes); disabling or resetting a password ends every session at once.
struct StaffAdministration: Sendable {
    let database: any DatabaseWriter
    /// bcrypt's work factor: 12 in production; the tests use less.
    let bcryptCost: UInt8
    let logger: Logger

    struct StaffView: ResponseEncodable, Equatable {
        var id: String
        var username: String
        var displayName: String
        var roles: [String]
        var departmentIds: [String]
        var teamIds: [String]
        var mustChangePassword: Bool
        var disabled: Bool
        /// Set while the account is locked after too many wrong passwords.
        var lockedUntil: Date?
    }

    struct NewStaff: Decodable, Sendable {
        var username: String
        var displayName: String
        var roles: [String]
        var departmentIds: [String]?
        var temporaryPassword: String
    }

    struct StaffUpdate: Decodable, Sendable {
        var displayName: String
        var roles: [String]
        var departmentIds: [String]
    }

    struct TeamView: ResponseEncodable, Equatable {
        struct Member: Codable, Equatable {
            var staffId: String
            var displayName: String
        }
        var id: String
        var departmentId: String
        var name: String
        var members: [Member]
    }

    struct NewTeam: Decodable, Sendable {
        var departmentId: String
        var name: String
    }

    // MARK: Staff

    func create(_ input: NewStaff, audit: RequestAudit) async throws -> StaffView {
        let username = input.username.lowercased()
        guard username.wholeMatch(of: /[a-z][a-z0-9._-]{2,31}/) != nil else {
            throw Self.invalid("username", "must be 3 to 32 of a-z 0-9 . _ -, starting with a letter")
        }
        let displayName = try Self.displayName(input.displayName)
        let roles = try Self.roles(input.roles)
        do {
            try StaffDirectory.checkPolicy(input.temporaryPassword, username: username)
        } catch let problem as Problem {
            throw Self.invalid("temporaryPassword", problem.detail)
        }
        let hash = await StaffDirectory.hash(input.temporaryPassword, cost: bcryptCost)
        let id = "staff_" + Secrets.randomHex(bytes: 8)
        let view = try await database.write { db in
            if try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM staff WHERE username = ?)", arguments: [username]) == true
            {
                throw Problem(.conflict, code: "username-taken", detail: "The username `\(username)` is taken.")
            }
            try db.execute(
                sql: """
                    INSERT INTO staff (id, username, display_name, roles, password_hash, must_change_password,
                        created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                    """,
                arguments: [id, username, displayName, Self.text(roles), hash, Date(), audit.actor])
            try Self.setDepartments(input.departmentIds ?? [], of: id, in: db)
            try audit.record(.create, "staff", id: id, in: db)
            return try Self.view(id, in: db)!
        }
        logger.notice(
            "staff created", metadata: ["staff": "\(id)", "by": "\(audit.actor)", "roles": "\(view.roles)"])
        return view
    }

    func list() async throws -> [StaffView] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM staff ORDER BY username").compactMap {
                try Self.view($0, in: db)
            }
        }
    }

    func get(_ id: String) async throws -> StaffView {
        guard let view = try await database.read({ db in try Self.view(id, in: db) }) else { throw Self.noStaff(id) }
        return view
    }

    /// Replaces a staff member's name, roles and departments. Leaving a department also leaves its teams.
    func update(_ id: String, _ input: StaffUpdate, audit: RequestAudit) async throws -> StaffView {
        let displayName = try Self.displayName(input.displayName)
        let roles = try Self.roles(input.roles)
        return try await database.write { db in
            guard try Self.view(id, in: db) != nil else { throw Self.noStaff(id) }
            if !roles.contains(.admin) { try Self.keepAnAdmin(besides: id, audit: audit, in: db) }
            try db.execute(
                sql: "UPDATE staff SET display_name = ?, roles = ? WHERE id = ?",
                arguments: [displayName, Self.text(roles), id])
            try Self.setDepartments(input.departmentIds, of: id, in: db)
            try db.execute(
                sql: """
                    DELETE FROM team_member WHERE staff_id = ? AND team_id IN (
                        SELECT team.id FROM team WHERE team.department_id NOT IN (
                            SELECT department_id FROM staff_department WHERE staff_id = ?))
                    """,
                arguments: [id, id])
            try audit.record(.update, "staff", id: id, in: db)
            return try Self.view(id, in: db)!
        }
    }

    /// Disables (every session ends, sign-in refused) or enables again a staff account.
    func setDisabled(_ disabled: Bool, _ id: String, audit: RequestAudit) async throws -> StaffView {
        let view = try await database.write { db in
            guard try Self.view(id, in: db) != nil else { throw Self.noStaff(id) }
            if disabled {
                try Self.keepAnAdmin(besides: id, audit: audit, in: db)
                try db.execute(
                    sql: "UPDATE staff SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?",
                    arguments: [Date(), id])
                try Self.endSessions(of: id, reason: "staff disabled", in: db)
            } else {
                try db.execute(sql: "UPDATE staff SET disabled_at = NULL WHERE id = ?", arguments: [id])
            }
            try audit.record(.update, disabled ? "staff-disabled" : "staff-enabled", id: id, in: db)
            return try Self.view(id, in: db)!
        }
        logger.notice(
            disabled ? "staff disabled" : "staff enabled", metadata: ["staff": "\(id)", "by": "\(audit.actor)"])
        return view
    }

    /// Sets a new temporary password for a staff member who forgot theirs: it must be changed at the next sign-in;
    /// the lockout is lifted and every session ends.
    func resetPassword(_ id: String, temporaryPassword: String, audit: RequestAudit) async throws -> StaffView {
        let username = try await database.read { db in
            try String.fetchOne(db, sql: "SELECT username FROM staff WHERE id = ?", arguments: [id])
        }
        guard let username else { throw Self.noStaff(id) }
        do {
            try StaffDirectory.checkPolicy(temporaryPassword, username: username)
        } catch let problem as Problem {
            throw Self.invalid("temporaryPassword", problem.detail)
        }
        let hash = await StaffDirectory.hash(temporaryPassword, cost: bcryptCost)
        let view = try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE staff SET password_hash = ?, must_change_password = 1, failed_attempts = 0,
                        locked_until = NULL
                    WHERE id = ?
                    """,
                arguments: [hash, id])
            try Self.endSessions(of: id, reason: "password reset", in: db)
            try audit.record(.update, "staff-password-reset", id: id, in: db)
            return try Self.view(id, in: db)!
        }
        logger.notice("staff password reset", metadata: ["staff": "\(id)", "by": "\(audit.actor)"])
        return view
    }

    /// Creates the first admin (`admin`, with `password` to be changed at first sign-in) when no admin exists:
    /// how a new deployment gets its first staff account. Does nothing once there is an admin. Runs at start-up,
    /// before the service listens, so the account exists by the time the service reports ready.
    func bootstrapAdmin(password: String) throws -> Bool {
        try StaffDirectory.checkPolicy(password, username: "admin")
        return try database.write { db in
            guard try Self.enabledAdmins(in: db).isEmpty else { return false }
            try db.execute(
                sql: """
                    INSERT INTO staff (id, username, display_name, roles, password_hash, must_change_password,
                        created_at, created_by)
                    VALUES (?, 'admin', '管理员', 'admin', ?, 1, ?, 'bootstrap')
                    """,
                arguments: [
                    "staff_" + Secrets.randomHex(bytes: 8), Bcrypt.hash(password, cost: bcryptCost), Date(),
                ])
            return true
        }
    }

    // MARK: Teams

    func createTeam(_ input: NewTeam, audit: RequestAudit) async throws -> TeamView {
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...40).contains(name.count) else { throw Self.invalidTeam("name", "must be 1 to 40 characters") }
        let id = "team_" + Secrets.randomHex(bytes: 6)
        return try await database.write { db in
            guard try Self.departmentExists(input.departmentId, in: db) else {
                throw Self.invalidTeam("departmentId", "names no department")
            }
            if try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM team WHERE department_id = ? AND name = ?)",
                arguments: [input.departmentId, name]) == true
            {
                throw Problem(
                    .conflict, code: "team-exists", detail: "The department already has a team named \(name).")
            }
            try db.execute(
                sql: "INSERT INTO team (id, department_id, name, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, input.departmentId, name, Date(), audit.actor])
            try audit.record(.create, "team", id: id, in: db)
            return try Self.team(id, in: db)!
        }
    }

    func teams(department: String?) async throws -> [TeamView] {
        try await database.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM team WHERE ?1 IS NULL OR department_id = ?1 ORDER BY department_id, name",
                arguments: [department]
            ).compactMap { try Self.team($0, in: db) }
        }
    }

    func team(_ id: String) async throws -> TeamView {
        guard let team = try await database.read({ db in try Self.team(id, in: db) }) else { throw Self.noTeam(id) }
        return team
    }

    /// Adds a staff member of the team's department to the team (again is harmless).
    func addMember(_ staff: String, to team: String, audit: RequestAudit) async throws -> TeamView {
        try await database.write { db in
            guard
                let department = try String.fetchOne(
                    db, sql: "SELECT department_id FROM team WHERE id = ?", arguments: [team])
            else { throw Self.noTeam(team) }
            guard try Self.view(staff, in: db) != nil else { throw Self.noStaff(staff) }
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM staff_department WHERE staff_id = ? AND department_id = ?)",
                    arguments: [staff, department]) == true
            else {
                throw Problem(
                    .conflict, code: "not-in-department",
                    detail: "`\(staff)` is not in the team's department `\(department)`: add the department first.")
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO team_member (team_id, staff_id, added_at) VALUES (?, ?, ?)",
                arguments: [team, staff, Date()])
            if db.changesCount > 0 { try audit.record(.create, "team-member", id: "\(team)/\(staff)", in: db) }
            return try Self.team(team, in: db)!
        }
    }

    func removeMember(_ staff: String, from team: String, audit: RequestAudit) async throws -> TeamView {
        try await database.write { db in
            guard try Self.team(team, in: db) != nil else { throw Self.noTeam(team) }
            try db.execute(
                sql: "DELETE FROM team_member WHERE team_id = ? AND staff_id = ?", arguments: [team, staff])
            guard db.changesCount == 1 else {
                throw Problem.notFound("`\(staff)` is not a member of `\(team)`.")
            }
            try audit.record(.delete, "team-member", id: "\(team)/\(staff)", in: db)
            return try Self.team(team, in: db)!
        }
    }

    // MARK: Rules and helpers

    static func view(_ id: String, in db: Database) throws -> StaffView? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM staff WHERE id = ?", arguments: [id]) else {
            return nil
        }
        let lockedUntil = (row["locked_until"] as Date?).flatMap { $0 > Date() ? $0 : nil }
        return StaffView(
            id: id, username: row["username"], displayName: row["display_name"],
            roles: StaffDirectory.roles(row["roles"]).map(\.rawValue).sorted(),
            departmentIds: try String.fetchAll(
                db, sql: "SELECT department_id FROM staff_department WHERE staff_id = ? ORDER BY department_id",
                arguments: [id]),
            teamIds: try String.fetchAll(
                db, sql: "SELECT team_id FROM team_member WHERE staff_id = ? ORDER BY team_id", arguments: [id]),
            mustChangePassword: row["must_change_password"], disabled: (row["disabled_at"] as Date?) != nil,
            lockedUntil: lockedUntil)
    }

    static func team(_ id: String, in db: Database) throws -> TeamView? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM team WHERE id = ?", arguments: [id]) else {
            return nil
        }
        let members = try Row.fetchAll(
            db,
            sql: """
                SELECT staff.id, staff.display_name FROM team_member JOIN staff ON staff.id = team_member.staff_id
                WHERE team_member.team_id = ? ORDER BY staff.username
                """,
            arguments: [id]
        ).map { TeamView.Member(staffId: $0["id"], displayName: $0["display_name"]) }
        return TeamView(id: id, departmentId: row["department_id"], name: row["name"], members: members)
    }

    private static func setDepartments(_ departments: [String], of id: String, in db: Database) throws {
        for department in departments where try !departmentExists(department, in: db) {
            throw invalid("departmentIds", "names no department `\(department)`")
        }
        try db.execute(sql: "DELETE FROM staff_department WHERE staff_id = ?", arguments: [id])
        for department in Set(departments) {
            try db.execute(
                sql: "INSERT INTO staff_department (staff_id, department_id) VALUES (?, ?)",
                arguments: [id, department])
        }
    }

    private static func departmentExists(_ id: String, in db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM department WHERE id = ?)", arguments: [id]) == true
    }

    private static func enabledAdmins(in db: Database) throws -> [String] {
        try Row.fetchAll(db, sql: "SELECT id, roles FROM staff WHERE disabled_at IS NULL")
            .filter { StaffDirectory.roles($0["roles"]).contains(.admin) }.map { $0["id"] }
    }

    /// Refuses a change that would leave the platform with no enabled admin, or an admin locking themselves out:
    /// nobody could then manage staff without the operator's shell.
    private static func keepAnAdmin(besides id: String, audit: RequestAudit, in db: Database) throws {
        if id == audit.actor {
            throw Problem(
                .conflict, code: "own-account",
                detail: "You cannot disable your own account or remove your own admin role: ask another admin.")
        }
        let admins = try enabledAdmins(in: db)
        if admins == [id] {
            throw Problem(
                .conflict, code: "last-admin", detail: "`\(id)` is the last enabled admin: make another admin first.")
        }
    }

    private static func endSessions(of id: String, reason: String, in db: Database) throws {
        try db.execute(
            sql:
                "UPDATE refresh_token SET revoked_at = ?, revoked_reason = ? WHERE account_id = ? AND revoked_at IS NULL",
            arguments: [Date(), reason, id])
    }

    private static func displayName(_ text: String) throws -> String {
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...30).contains(name.count) else { throw invalid("displayName", "must be 1 to 30 characters") }
        return name
    }

    private static func roles(_ names: [String]) throws -> Set<Role> {
        let roles = names.compactMap(Role.init(rawValue:))
        guard !roles.isEmpty, roles.count == names.count, Set(roles).isSubset(of: Role.staffRoles) else {
            throw invalid(
                "roles", "must be one or more of \(Role.staffRoles.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        return Set(roles)
    }

    private static func text(_ roles: Set<Role>) -> String {
        roles.map(\.rawValue).sorted().joined(separator: ",")
    }

    static func noStaff(_ id: String) -> Problem { Problem.notFound("There is no staff member `\(id)`.") }
    static func noTeam(_ id: String) -> Problem { Problem.notFound("There is no team `\(id)`.") }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-staff", detail: "`\(field)` \(message).", extensions: ["field": field]
        )
    }

    static func invalidTeam(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-team", detail: "`\(field)` \(message).", extensions: ["field": field])
    }
}
