import Foundation
import GRDB
import Hummingbird
import Logging
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit

/// Patients' sign-up and sign-in with a mobile number and an SMS code, and the sessions that follow: a
/// 15-minute access token and a rotating refresh token. Refresh tokens are stored hashed; each refresh replaces
/// the one presented, and presenting a replaced one again (a stolen copy, or a replay) revokes its whole family.
struct SignInService: Sendable {
    let database: any DatabaseWriter
    let gateway: any SMSGateway
    let issuer: TokenIssuer
    let policy: SignInPolicy
    let logger: Logger

    // MARK: Codes

    struct CodeSent: ResponseEncodable, Equatable {
        var phone: String
        var expiresInSeconds: Int
        var resendAfterSeconds: Int
    }

    func sendCode(to phoneText: String, clientAddress: String, now: Date = Date()) async throws -> CodeSent {
        guard let phone = MobileNumber(phoneText) else {
            throw Problem(
                .unprocessableContent, code: "invalid-phone",
                detail: "`phone` must be a mainland mobile number: 11 digits starting 13–19, e.g. 13812345678.")
        }
        let code = String(format: "%06d", Int.random(in: 0...999_999))
        let salt = Secrets.randomHex(bytes: 16)
        // The limits and the new code in one transaction: two requests at once cannot both slip under a limit.
        try await database.write { db in
            try checkLimits(phone: phone, clientAddress: clientAddress, now: now, in: db)
            try db.execute(
                sql: """
                    INSERT INTO sign_in_code (phone, salt, code_hash, sent_at, expires_at, attempts, client_address)
                    VALUES (?, ?, ?, ?, ?, 0, ?)
                    """,
                arguments: [
                    phone.digits, salt, Secrets.saltedSHA256(code, salt: salt), now,
                    now.addingTimeInterval(policy.codeLifetime),
                    clientAddress,
                ])
        }
        do {
            try await gateway.send(
                SMSMessage(
                    to: phone.digits, template: "SIGN_IN_CODE",
                    parameters: ["code": code, "minutes": "\(Int(policy.codeLifetime / 60))"],
                    text: "【云诊】您的验证码为 \(code)，\(Int(policy.codeLifetime / 60))分钟内有效。请勿告诉他人。"))
        } catch {
            logger.error("SMS code not sent", metadata: ["phone": "\(phone)", "error": "\(error)"])
            // The code stays recorded (it counts against the limits, as a provider's send would); it cannot be
            // used by anyone who did not receive it.
            throw Problem(
                .badGateway, code: "sms-unavailable",
                detail: "The text message could not be sent (\(error)). Try again in a minute.")
        }
        logger.info("SMS code sent", metadata: ["phone": "\(phone)"])
        return CodeSent(
            phone: phone.masked, expiresInSeconds: Int(policy.codeLifetime), resendAfterSeconds: Int(policy.resendAfter)
        )
    }

    private func checkLimits(phone: MobileNumber, clientAddress: String, now: Date, in db: Database) throws {
        if let last = try Date.fetchOne(
            db, sql: "SELECT max(sent_at) FROM sign_in_code WHERE phone = ?", arguments: [phone.digits]),
            now.timeIntervalSince(last) < policy.resendAfter
        {
            let wait = Int((policy.resendAfter - now.timeIntervalSince(last)).rounded(.up))
            throw Problem(
                .tooManyRequests, code: "resend-too-soon",
                detail: "A code was sent to \(phone.masked) just now; you can ask for another in \(wait) s.",
                extensions: ["retryAfterSeconds": "\(wait)"])
        }
        let count = { (sql: String, arguments: StatementArguments) in
            try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0
        }
        let lastHour = now.addingTimeInterval(-3600)
        if try count("SELECT count(*) FROM sign_in_code WHERE phone = ? AND sent_at > ?", [phone.digits, lastHour])
            >= policy.codesPerNumberPerHour
            || count(
                "SELECT count(*) FROM sign_in_code WHERE phone = ? AND sent_at > ?",
                [phone.digits, now.addingTimeInterval(-24 * 3600)]) >= policy.codesPerNumberPerDay
        {
            throw Problem(
                .tooManyRequests, code: "too-many-codes",
                detail: "Too many codes were sent to \(phone.masked) recently. Try again later.")
        }
        if try count(
            "SELECT count(*) FROM sign_in_code WHERE client_address = ? AND sent_at > ?", [clientAddress, lastHour])
            >= policy.codesPerAddressPerHour
        {
            throw Problem(
                .tooManyRequests, code: "too-many-requests",
                detail: "Too many codes were asked for from your network in the last hour. Try again later.")
        }
    }

    // MARK: Sessions

    struct Session: ResponseEncodable, Equatable {
        var accountId: String
        var accessToken: String
        var accessTokenExpiresAt: Date
        var refreshToken: String
        var refreshTokenExpiresAt: Date
        /// True when this sign-in created the account.
        var created: Bool
    }

    /// Checks `code` against the number's latest code; on success creates the account if it is new and starts a
    /// session. The check, the attempt count and the session are one transaction.
    func signIn(
        phoneText: String, code: String, context: ServiceRequestContext, now: Date = Date()
    ) async throws -> Session {
        guard let phone = MobileNumber(phoneText) else {
            throw Problem(
                .unprocessableContent, code: "invalid-phone",
                detail: "`phone` must be a mainland mobile number: 11 digits starting 13–19.")
        }
        guard code.count == 6, code.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw Problem(
                .unprocessableContent, code: "invalid-code", detail: "`code` is the 6 digits of the text message.")
        }
        let outcome: Result<(account: String, created: Bool, refresh: String), Problem> =
            try await database.write { db in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT * FROM sign_in_code WHERE phone = ? AND used_at IS NULL ORDER BY id DESC LIMIT 1",
                        arguments: [phone.digits])
                else {
                    return .failure(
                        Problem(
                            .unauthorized, code: "code-not-requested",
                            detail: "No code was sent to \(phone.masked): ask for one first."))
                }
                let id: Int64 = row["id"]
                let attempts: Int = row["attempts"]
                if (row["expires_at"] as Date) <= now {
                    return .failure(
                        Problem(
                            .unauthorized, code: "code-expired", detail: "That code has expired: ask for a new one."))
                }
                if attempts >= policy.attemptsPerCode {
                    return .failure(Self.exhausted)
                }
                guard Secrets.constantTimeEquals(Secrets.saltedSHA256(code, salt: row["salt"]), row["code_hash"]) else {
                    try db.execute(sql: "UPDATE sign_in_code SET attempts = attempts + 1 WHERE id = ?", arguments: [id])
                    let left = policy.attemptsPerCode - attempts - 1
                    if left == 0 { return .failure(Self.exhausted) }
                    return .failure(
                        Problem(
                            .unauthorized, code: "code-invalid",
                            detail: "That code is not right; \(left) \(left == 1 ? "try" : "tries") left.",
                            extensions: ["attemptsLeft": "\(left)"]))
                }
                try db.execute(sql: "UPDATE sign_in_code SET used_at = ? WHERE id = ?", arguments: [now, id])
                var account = try String.fetchOne(
                    db, sql: "SELECT id FROM account WHERE phone = ?", arguments: [phone.digits])
                let created = account == nil
                if account == nil {
                    account = "acct_" + Secrets.randomHex(bytes: 10)
                    try db.execute(
                        sql: "INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)",
                        arguments: [account, phone.digits, now])
                }
                try db.execute(
                    sql: "UPDATE account SET last_sign_in_at = ? WHERE id = ?", arguments: [now, account])
                let refresh = try startRefreshToken(
                    account: account!, family: Secrets.randomHex(bytes: 12), now: now, in: db)
                try context.audit(actor: account!, role: Role.patient.rawValue)
                    .record(created ? .create : .update, "session", id: nil, in: db)
                return .success((account!, created, refresh))
            }
        let (account, created, refresh) = try outcome.get()
        logger.info(
            created ? "patient account created" : "patient signed in",
            metadata: ["account": "\(account)", "phone": "\(phone)"])
        return try await session(
            account: account, kind: .patient, grants: .patient, refresh: refresh, created: created, now: now)
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged revokes its family.
    func refresh(_ presented: String, now: Date = Date()) async throws -> Session {
        let outcome: Result<(account: String, kind: Principal.Kind, grants: SessionGrants, refresh: String), Problem> =
            try await database.write { db in
                guard let (row, _) = try lookUp(presented, in: db) else { return .failure(Self.invalidRefresh) }
                let id: String = row["id"]
                let family: String = row["family_id"]
                if row["revoked_at"] as Date? != nil { return .failure(Self.invalidRefresh) }
                if row["replaced_at"] as Date? != nil {
                    try revoke(family: family, reason: "reused", now: now, in: db)
                    logger.warning(
                        "a replaced refresh token was presented again; its session is revoked",
                        metadata: ["account": "\(row["account_id"] as String)", "family": "\(family)"])
                    return .failure(
                        Problem(
                            .unauthorized, code: "refresh-token-reused",
                            detail:
                                "This refresh token was already used, so the session was ended for safety. Sign in again."
                        ))
                }
                if (row["expires_at"] as Date) <= now {
                    return .failure(
                        Problem(
                            .unauthorized, code: "session-expired", detail: "The session has expired. Sign in again."))
                }
                let account: String = row["account_id"]
                let kind = Principal.Kind(rawValue: row["subject_kind"]) ?? .patient
                // Staff roles, departments and teams are read again at each refresh, so a change (or a disabled
                // account) takes effect within one access token's life.
                var grants = SessionGrants.patient
                if kind == .staff {
                    guard let staff = try StaffDirectory.activeGrants(of: account, in: db) else {
                        try revoke(family: family, reason: "staff disabled", now: now, in: db)
                        return .failure(Self.invalidRefresh)
                    }
                    grants = staff
                }
                try db.execute(sql: "UPDATE refresh_token SET replaced_at = ? WHERE id = ?", arguments: [now, id])
                let refresh = try startRefreshToken(account: account, kind: kind, family: family, now: now, in: db)
                return .success((account, kind, grants, refresh))
            }
        let (account, kind, grants, refresh) = try outcome.get()
        return try await session(
            account: account, kind: kind, grants: grants, refresh: refresh, created: false, now: now)
    }

    /// Ends the session the refresh token belongs to. Access tokens already issued stay valid until they expire
    /// (at most 15 minutes).
    func signOut(_ presented: String, now: Date = Date()) async throws {
        let found = try await database.write { db -> Bool in
            guard let (row, _) = try lookUp(presented, in: db) else { return false }
            try revoke(family: row["family_id"], reason: "signed out", now: now, in: db)
            return true
        }
        if !found { throw Self.invalidRefresh }
    }

    func session(
        account: String, kind: Principal.Kind, grants: SessionGrants, refresh: String, created: Bool, now: Date
    ) async throws -> Session {
        let (token, principal) = try await issuer.issue(
            subject: account, kind: kind, roles: grants.roles, departments: grants.departments, teams: grants.teams,
            now: now)
        return Session(
            accountId: account, accessToken: token, accessTokenExpiresAt: principal.expiresAt,
            refreshToken: refresh, refreshTokenExpiresAt: now.addingTimeInterval(policy.refreshTokenLifetime),
            created: created)
    }

    /// Stores a new refresh token of `family` (hashed) and returns it as the client keeps it: `<id>.<secret>`.
    func startRefreshToken(
        account: String, kind: Principal.Kind = .patient, family: String, now: Date, in db: Database
    ) throws -> String {
        let id = Secrets.randomHex(bytes: 12)
        let secret = Secrets.randomHex(bytes: 32)
        try db.execute(
            sql: """
                INSERT INTO refresh_token (id, family_id, subject_kind, account_id, secret_hash, issued_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, family, kind.rawValue, account, Secrets.saltedSHA256(secret, salt: id), now,
                now.addingTimeInterval(policy.refreshTokenLifetime),
            ])
        return "\(id).\(secret)"
    }

    private func lookUp(_ presented: String, in db: Database) throws -> (Row, String)? {
        let parts = presented.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0].count == 24, parts[1].count == 64 else { return nil }
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM refresh_token WHERE id = ?", arguments: [parts[0]]),
            Secrets.constantTimeEquals(Secrets.saltedSHA256(parts[1], salt: parts[0]), row["secret_hash"])
        else { return nil }
        return (row, parts[0])
    }

    func revoke(family: String, reason: String, now: Date, in db: Database) throws {
        try db.execute(
            sql:
                "UPDATE refresh_token SET revoked_at = ?, revoked_reason = ? WHERE family_id = ? AND revoked_at IS NULL",
            arguments: [now, reason, family])
    }

    // MARK: Helpers

    static let exhausted = Problem(
        .tooManyRequests, code: "code-exhausted", detail: "Too many wrong tries for that code: ask for a new one.")
    static let invalidRefresh = Problem(
        .unauthorized, code: "refresh-token-invalid", detail: "The refresh token is not valid. Sign in again.")
}

/// What a session's access tokens say of its holder beyond who they are.
struct SessionGrants: Sendable, Equatable {
    var roles: Set<Role>
    var departments: Set<String> = []
    var teams: Set<String> = []

    static let patient = SessionGrants(roles: [.patient])
    /// A staff member whose temporary password is unchanged: they may change it and nothing else.
    static let passwordChangeOnly = SessionGrants(roles: [])
}
