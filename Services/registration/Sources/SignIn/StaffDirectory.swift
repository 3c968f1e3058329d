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

    struct StaffSession: ResponseEncodable, Equatable {
        var session: SignInService.Session
        var mustChangePassword: Bool
    }

    // MARK: Sign-in

    func signIn(username: String, password: String, context: ServiceRequestContext) async throws -> StaffSession {
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
        let outcome: Result<(refresh: String, grants: SessionGrants, mustChange: Bool), Problem> =
            try await database
            .write { db in
                guard matches else {
                    let failures =
                        (try Int.fetchOne(db, sql: "SELECT failed_attempts FROM staff WHERE id = ?", arguments: [id])
                            ?? 0)
                        + 1
                    if failures >= Self.maximumFailures {
                        let until = now.addingTimeInterval(Self.lockout)
                        try db.execute(
                            sql: "UPDATE staff SET failed_attempts = 0, locked_until = ? WHERE id = ?",
                            arguments: [until, id])
                        try context.audit(actor: id, role: "staff").record(
                            .update, "staff-lockout", id: id, outcome: .denied, in: db)
                        return .failure(Self.locked(until: until, now: now))
                    }
                    try db.execute(sql: "UPDATE staff SET failed_attempts = ? WHERE id = ?", arguments: [failures, id])
                    return .failure(Self.invalidCredentials)
                }
                try db.execute(
                    sql: "UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = ?", arguments: [id])
                guard let (grants, mustChange) = try Self.grants(of: id, in: db) else {
                    return .failure(Self.invalidCredentials)
                }
                let refresh = try signIn.startRefreshToken(
                    account: id, kind: .staff, family: Secrets.randomHex(bytes: 12), now: now, in: db)
                try context.audit(actor: id, role: grants.roles.map(\.rawValue).sorted().joined(separator: ","))
                    .record(.create, "session", id: id, in: db)
                return .success((refresh, grants, mustChange))
            }
        let (refresh, grants, mustChange) = try outcome.get()
        logger.info("staff signed in", metadata: ["staff": "\(id)"])
        let session = try await signIn.session(
            account: id, kind: .staff, grants: grants, refresh: refresh, created: false, now: now)
        return StaffSession(session: session, mustChangePassword: mustChange)
    }

    /// Changes the signed-in staff member's password; every session of theirs ends (sign in again).
    func changePassword(
        of principal: Principal, current: String, new: String, context: ServiceRequestContext
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
            try context.audit(principal).record(.update, "staff-password", id: principal.subject, in: db)
        }
        logger.info("staff password changed", metadata: ["staff": "\(principal.subject)"])
    }

    /// What an enabled staff member's tokens carry (nothing while a temporary password is unchanged), or nil when
    /// there is no such enabled staff member.
    static func activeGrants(of id: String, in db: Database) throws -> SessionGrants? {
        try grants(of: id, in: db)?.grants
    }

    private static func grants(of id: String, in db: Database) throws -> (grants: SessionGrants, mustChange: Bool)? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT roles, must_change_password FROM staff WHERE id = ? AND disabled_at IS NULL",
                arguments: [id])
        else { return nil }
        // Until the temporary password is replaced, the token carries no role: it can change the password and
        // nothing else.
        if row["must_change_password"] as Bool { return (.passwordChangeOnly, true) }
        let departments = try String.fetchSet(
            db, sql: "SELECT department_id FROM staff_department WHERE staff_id = ?", arguments: [id])
        let teams = try String.fetchSet(db, sql: "SELECT team_id FROM team_member WHERE staff_id = ?", arguments: [id])
        return (SessionGrants(roles: roles(row["roles"]), departments: departments, teams: teams), false)
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

    /// bcrypt is deliberately slow (a quarter of a second at cost 12): run it on a Dispatch thread, never on one of
    /// Swift's few cooperative threads, which every request shares.
    static func hash(_ password: String, cost: UInt8) async -> String {
        await offPool { Bcrypt.hash(password, cost: cost) }
    }

    static func verify(_ password: String, hash: String) async -> Bool {
        await offPool { Bcrypt.verify(password, hash: hash) }
    }

    static func offPool<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }
}
