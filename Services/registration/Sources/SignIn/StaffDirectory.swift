import Foundation
import GRDB
import Hummingbird
import HummingbirdBcrypt
import Logging
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit

/// Hospital staff (doctors, nurses, pharmacists, schedulers, gate keepers, admins): created by an admin, signed in
/// with a username and a bcrypt-hashed password, locked for 15 minutes after 5 wrong passwords in a row, made to
/// choose their own password after an admin set a temporary one.
struct StaffDirectory: Sendable {
    let database: any DatabaseWriter
    let signIn: SignInService
    /// bcrypt's work factor: 12 in production (about a quarter of a second here); the tests use less.
    let bcryptCost: UInt8
    let logger: Logger

    static let maximumFailures = 5
    static let lockout: TimeInterval = 15 * 60

    struct StaffView: ResponseEncodable, Equatable {
        var id: String
        var username: String
        var displayName: String
        var roles: [String]
        var departmentId: String?
        var mustChangePassword: Bool
        var disabled: Bool
    }

    struct NewStaff: Decodable, Sendable {
        var username: String
        var displayName: String
        var roles: [String]
        var departmentId: String?
        var temporaryPassword: String
    }

    struct StaffSession: ResponseEncodable, Equatable {
        var session: SignInService.Session
        var mustChangePassword: Bool
    }

    // MARK: Sign-in

    func signIn(username: String, password: String, context: ServiceRequestContext, clientAddress: String)
        async throws -> StaffSession
    {
        let now = Date()
        let row = try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM staff WHERE username = ? AND disabled_at IS NULL",
                arguments: [username.lowercased()])
        }
        guard let row else {
            // The same work as a real check, so the answer's timing does not tell which usernames exist.
            _ = await Self.verify(password, hash: Self.decoyHash)
            throw Self.invalidCredentials
        }
        let id: String = row["id"]
        if let lockedUntil = row["locked_until"] as Date?, lockedUntil > now {
            throw Self.locked(until: lockedUntil, now: now)
        }
        let matches = await Self.verify(password, hash: row["password_hash"])
        let storedRoles = Self.roles(row["roles"])
        let mustChangePassword: Bool = row["must_change_password"]
        let outcome: Result<(refresh: String, roles: Set<Role>, mustChange: Bool), Problem> = try await database.write {
            db in
            guard matches else {
                let failures =
                    (try Int.fetchOne(db, sql: "SELECT failed_attempts FROM staff WHERE id = ?", arguments: [id]) ?? 0)
                    + 1
                if failures >= Self.maximumFailures {
                    let until = now.addingTimeInterval(Self.lockout)
                    try db.execute(
                        sql: "UPDATE staff SET failed_attempts = 0, locked_until = ? WHERE id = ?",
                        arguments: [until, id])
                    try audit(
                        id, role: "staff", action: .update, resource: "staff-lockout", outcome: .denied, context,
                        clientAddress, db)
                    return .failure(Self.locked(until: until, now: now))
                }
                try db.execute(sql: "UPDATE staff SET failed_attempts = ? WHERE id = ?", arguments: [failures, id])
                return .failure(Self.invalidCredentials)
            }
            try db.execute(
                sql: "UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = ?", arguments: [id])
            // Until the temporary password is replaced, the token carries no role: it can change the password and
            // nothing else.
            let roles = mustChangePassword ? [] : storedRoles
            let refresh = try signIn.startRefreshToken(
                account: id, kind: .staff, family: Secrets.randomHex(bytes: 12), now: now, in: db)
            try audit(
                id, role: roles.map(\.rawValue).sorted().joined(separator: ","), action: .create, resource: "session",
                outcome: .success, context, clientAddress, db)
            return .success((refresh, roles, mustChangePassword))
        }
        let (refresh, roles, mustChange) = try outcome.get()
        logger.info("staff signed in", metadata: ["staff": "\(id)"])
        let session = try await signIn.session(
            account: id, kind: .staff, roles: roles, refresh: refresh, created: false, now: now)
        return StaffSession(session: session, mustChangePassword: mustChange)
    }

    /// Changes the signed-in staff member's password; every session of theirs ends (sign in again).
    func changePassword(
        of principal: Principal, current: String, new: String, context: ServiceRequestContext, clientAddress: String
    ) async throws {
        guard principal.kind == .staff else {
            throw Problem(.forbidden, code: "staff-only", detail: "Only staff accounts have passwords.")
        }
        guard
            let hash = try await database.read({ db in
                try String.fetchOne(
                    db, sql: "SELECT password_hash FROM staff WHERE id = ? AND disabled_at IS NULL",
                    arguments: [principal.subject])
            })
        else {
            throw Problem(.unauthorized, code: "invalid-token", detail: "This staff account no longer exists.")
        }
        guard await Self.verify(current, hash: hash) else { throw Self.invalidCredentials }
        try Self.checkPolicy(new, username: nil)
        guard new != current else {
            throw Problem(
                .unprocessableContent, code: "weak-password",
                detail: "The new password must differ from the current one.")
        }
        let newHash = await Self.hash(new, cost: bcryptCost)
        try await database.write { db in
            try db.execute(
                sql: "UPDATE staff SET password_hash = ?, must_change_password = 0 WHERE id = ?",
                arguments: [newHash, principal.subject])
            try db.execute(
                sql:
                    "UPDATE refresh_token SET revoked_at = ?, revoked_reason = 'password changed' WHERE account_id = ? AND revoked_at IS NULL",
                arguments: [Date(), principal.subject])
            try audit(
                principal.subject, role: principal.auditRole, action: .update, resource: "staff-password",
                outcome: .success, context, clientAddress, db)
        }
        logger.info("staff password changed", metadata: ["staff": "\(principal.subject)"])
    }

    // MARK: Administration

    func create(_ input: NewStaff, by admin: Principal, context: ServiceRequestContext, clientAddress: String)
        async throws -> StaffView
    {
        let username = input.username.lowercased()
        guard username.wholeMatch(of: /[a-z][a-z0-9._-]{2,31}/) != nil else {
            throw Self.invalid("username", "must be 3 to 32 of a-z 0-9 . _ -, starting with a letter")
        }
        let displayName = input.displayName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...30).contains(displayName.count) else {
            throw Self.invalid("displayName", "must be 1 to 30 characters")
        }
        let roles = input.roles.compactMap(Role.init(rawValue:))
        guard !roles.isEmpty, roles.count == input.roles.count, Set(roles).isSubset(of: Role.staffRoles) else {
            throw Self.invalid(
                "roles", "must be one or more of \(Role.staffRoles.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        do {
            try Self.checkPolicy(input.temporaryPassword, username: username)
        } catch let problem as Problem {
            throw Self.invalid("temporaryPassword", problem.detail)
        }
        let hash = await Self.hash(input.temporaryPassword, cost: bcryptCost)
        let id = "staff_" + Secrets.randomHex(bytes: 8)
        try await database.write { db in
            if let department = input.departmentId,
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM department WHERE id = ?)", arguments: [department]) != true
            {
                throw Self.invalid("departmentId", "names no department")
            }
            if try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM staff WHERE username = ?)", arguments: [username]) == true
            {
                throw Problem(.conflict, code: "username-taken", detail: "The username `\(username)` is taken.")
            }
            try db.execute(
                sql: """
                    INSERT INTO staff (id, username, display_name, roles, department_id, password_hash,
                        must_change_password, created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
                    """,
                arguments: [
                    id, username, displayName, roles.map(\.rawValue).sorted().joined(separator: ","),
                    input.departmentId,
                    hash, Date(), admin.subject,
                ])
            try audit(
                admin.subject, role: admin.auditRole, action: .create, resource: "staff", resourceID: id,
                outcome: .success, context, clientAddress, db)
        }
        logger.notice(
            "staff created",
            metadata: ["staff": "\(id)", "by": "\(admin.subject)", "roles": "\(roles.map(\.rawValue))"])
        return try await database.read { db in
            try Self.view(try Row.fetchOne(db, sql: "SELECT * FROM staff WHERE id = ?", arguments: [id])!)
        }
    }

    func list() async throws -> [StaffView] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM staff ORDER BY username").map(Self.view)
        }
    }

    /// Creates the first admin (`admin`, with `password` to be changed at first sign-in) when no admin exists:
    /// how a new deployment gets its first staff account. Does nothing once there is an admin. Runs at start-up,
    /// before the service listens, so the account exists by the time the service reports ready.
    func bootstrapAdmin(password: String) throws -> Bool {
        try Self.checkPolicy(password, username: "admin")
        return try database.write { db in
            let admins = try String.fetchAll(db, sql: "SELECT roles FROM staff WHERE disabled_at IS NULL")
                .filter { Self.roles($0).contains(.admin) }
            guard admins.isEmpty else { return false }
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

    /// The roles an enabled staff member's token carries (none while a temporary password is unchanged), or nil
    /// when there is no such enabled staff member.
    static func activeRoles(of id: String, in db: Database) throws -> Set<Role>? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT roles, must_change_password FROM staff WHERE id = ? AND disabled_at IS NULL",
                arguments: [id])
        else { return nil }
        return (row["must_change_password"] as Bool) ? [] : roles(row["roles"])
    }

    // MARK: Rules and helpers

    /// At least 10 characters with three of: lower case, upper case, digits, symbols; not the username. (MLPS
    /// level 3 asks for complexity and regular change; length does most of the work.)
    static func checkPolicy(_ password: String, username: String?) throws {
        let classes = [
            password.contains { $0.isLowercase }, password.contains { $0.isUppercase },
            password.contains { $0.isNumber }, password.contains { !$0.isLetter && !$0.isNumber },
        ].filter { $0 }.count
        guard password.count >= 10, password.count <= 128, classes >= 3 else {
            throw Problem(
                .unprocessableContent, code: "weak-password",
                detail: "A password needs 10 to 128 characters with three of: lower case, upper case, digits, symbols.")
        }
        if let username, password.lowercased().contains(username.lowercased()) {
            throw Problem(
                .unprocessableContent, code: "weak-password", detail: "A password must not contain the username.")
        }
    }

    static func roles(_ text: String) -> Set<Role> {
        Set(text.split(separator: ",").compactMap { Role(rawValue: String($0)) })
    }

    static func view(_ row: Row) -> StaffView {
        StaffView(
            id: row["id"], username: row["username"], displayName: row["display_name"],
            roles: Self.roles(row["roles"]).map(\.rawValue).sorted(), departmentId: row["department_id"],
            mustChangePassword: row["must_change_password"], disabled: (row["disabled_at"] as Date?) != nil)
    }

    static let invalidCredentials = Problem(
        .unauthorized, code: "invalid-credentials", detail: "The username or the password is not right.")
    /// A hash of nothing anyone knows, verified when the username does not exist.
    static let decoyHash = Bcrypt.hash(Secrets.randomHex(bytes: 16), cost: 12)

    static func locked(until: Date, now: Date) -> Problem {
        let wait = Int(until.timeIntervalSince(now).rounded(.up))
        return Problem(
            .tooManyRequests, code: "account-locked",
            detail:
                "Too many wrong passwords: this account is locked for \(wait / 60 + 1) minutes. Ask an admin if you forgot it.",
            extensions: ["retryAfterSeconds": "\(wait)"])
    }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-staff", detail: "`\(field)` \(message).", extensions: ["field": field]
        )
    }

    /// bcrypt is deliberately slow (a quarter of a second at cost 12): run it on a Dispatch thread, never on one of
    /// Swift's few cooperative threads, which every request shares.
    static func hash(_ password: String, cost: UInt8) async -> String {
        await offPool { Bcrypt.hash(password, cost: cost) }
    }

    static func verify(_ password: String, hash: String) async -> Bool {
        await offPool { Bcrypt.verify(password, hash: hash) }
    }

    private static func offPool<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }

    private func audit(
        _ actor: String, role: String, action: AuditAction, resource: String, resourceID: String? = nil,
        outcome: AuditOutcome,
        _ context: ServiceRequestContext, _ clientAddress: String, _ db: Database
    ) throws {
        try AuditTrail.record(
            AuditEntry(
                actor: actor, actorRole: role, patientID: nil, action: action, resourceType: resource,
                resourceID: resourceID ?? actor, requestID: context.requestID, clientAddress: clientAddress,
                outcome: outcome),
            in: db)
    }
}
