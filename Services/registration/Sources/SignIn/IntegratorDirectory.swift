import Foundation
import GRDB
import Hummingbird
import Logging
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Hospital systems (HIS, EMR, the clinical data center) that receive events and pull data: integrator accounts,
/// each with API keys scoped to event types. A key is shown once, when made; only the SHA-256 of its secret is
/// kept. An integrator trades a key for a 15-minute access token (`POST /auth/integrator/token`), which carries the
/// key's event types as scopes; revoking a key stops new tokens at once.
struct IntegratorDirectory: Sendable {
    let database: any DatabaseWriter
    let issuer: TokenIssuer
    let logger: Logger

    struct IntegratorView: ResponseEncodable, Equatable {
        var id: String
        var name: String
        var keys: [KeyView]
    }

    struct KeyView: ResponseEncodable, Equatable {
        var id: String
        var eventTypes: [String]
        var createdAt: Date
        var lastUsedAt: Date?
        var revoked: Bool
    }

    /// A new key: `apiKey` is the only time the secret is shown.
    struct NewKey: ResponseEncodable {
        var integratorId: String
        var key: KeyView
        var apiKey: String
    }

    struct Token: ResponseEncodable {
        var accessToken: String
        var accessTokenExpiresAt: Date
        var eventTypes: [String]
    }

    func create(name: String, eventTypes: [String], audit: RequestAudit) async throws -> NewKey {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...64).contains(name.count) else { throw Self.invalid("name", "must be 1 to 64 characters") }
        // Checked before the integrator is made, so a refused request leaves no integrator without a key behind.
        _ = try Self.eventTypes(eventTypes)
        let id = "intg_" + Secrets.randomHex(bytes: 8)
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO integrator (id, name, created_at, created_by) VALUES (?, ?, ?, ?)",
                arguments: [id, name, Date(), audit.actor])
            try audit.record(.create, "integrator", id: id, in: db)
        }
        return try await addKey(to: id, eventTypes: eventTypes, audit: audit)
    }

    func addKey(to integrator: String, eventTypes: [String], audit: RequestAudit) async throws -> NewKey {
        let types = try Self.eventTypes(eventTypes)
        let keyID = Secrets.randomHex(bytes: 8)
        let secret = Secrets.randomHex(bytes: 32)
        let now = Date()
        try await database.write { db in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM integrator WHERE id = ?)", arguments: [integrator]) == true
            else { throw Problem.notFound("There is no integrator `\(integrator)`.") }
            try db.execute(
                sql: """
                    INSERT INTO integrator_key (id, integrator_id, secret_hash, event_types, created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    keyID, integrator, Secrets.saltedSHA256(secret, salt: keyID), types.sorted().joined(separator: ","),
                    now, audit.actor,
                ])
            try audit.record(.create, "integrator-key", id: keyID, in: db)
        }
        logger.notice("integrator key made", metadata: ["integrator": "\(integrator)", "key": "\(keyID)"])
        return NewKey(
            integratorId: integrator,
            key: KeyView(id: keyID, eventTypes: types.sorted(), createdAt: now, lastUsedAt: nil, revoked: false),
            apiKey: "yzk_\(keyID)_\(secret)")
    }

    func revoke(key: String, of integrator: String, audit: RequestAudit) async throws {
        try await database.write { db in
            try db.execute(
                sql:
                    "UPDATE integrator_key SET revoked_at = ? WHERE id = ? AND integrator_id = ? AND revoked_at IS NULL",
                arguments: [Date(), key, integrator])
            guard db.changesCount == 1 else {
                throw Problem.notFound("There is no active key `\(key)` of `\(integrator)`.")
            }
            try audit.record(.delete, "integrator-key", id: key, in: db)
        }
        logger.notice("integrator key revoked", metadata: ["integrator": "\(integrator)", "key": "\(key)"])
    }

    func list() async throws -> [IntegratorView] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, name FROM integrator ORDER BY name").map { row in
                let keys = try Row.fetchAll(
                    db, sql: "SELECT * FROM integrator_key WHERE integrator_id = ? ORDER BY created_at",
                    arguments: [row["id"] as String]
                ).map { key in
                    KeyView(
                        id: key["id"],
                        eventTypes: (key["event_types"] as String).split(separator: ",").map(String.init),
                        createdAt: key["created_at"], lastUsedAt: key["last_used_at"],
                        revoked: (key["revoked_at"] as Date?) != nil)
                }
                return IntegratorView(id: row["id"], name: row["name"], keys: keys)
            }
        }
    }

    /// Trades an API key (`yzk_<id>_<secret>`) for an access token scoped to the key's event types.
    func token(for apiKey: String) async throws -> Token {
        let parts = apiKey.split(separator: "_")
        guard parts.count == 3, parts[0] == "yzk", parts[1].count == 16, parts[2].count == 64 else {
            throw Self.invalidKey
        }
        let (keyID, secret) = (String(parts[1]), String(parts[2]))
        let found = try await database.write { db -> (integrator: String, types: [String])? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM integrator_key WHERE id = ? AND revoked_at IS NULL", arguments: [keyID]),
                Secrets.constantTimeEquals(Secrets.saltedSHA256(secret, salt: keyID), row["secret_hash"])
            else { return nil }
            try db.execute(sql: "UPDATE integrator_key SET last_used_at = ? WHERE id = ?", arguments: [Date(), keyID])
            return (row["integrator_id"], (row["event_types"] as String).split(separator: ",").map(String.init))
        }
        guard let found else { throw Self.invalidKey }
        let (token, principal) = try await issuer.issue(
            subject: found.integrator, kind: .integrator, roles: [.integrator], scopes: Set(found.types))
        return Token(accessToken: token, accessTokenExpiresAt: principal.expiresAt, eventTypes: found.types.sorted())
    }

    static let invalidKey = Problem(
        .unauthorized, code: "invalid-api-key", detail: "The API key is not valid or was revoked.")

    static func eventTypes(_ names: [String]) throws -> Set<String> {
        let types = Set(names)
        guard !types.isEmpty, types.allSatisfy(EventCatalog.isKnown) else {
            throw Self.invalid(
                "eventTypes",
                "must name one or more event types of the catalogue (\(EventCatalog.all.map { $0.eventType }.joined(separator: ", ")))"
            )
        }
        return types
    }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-integrator", detail: "`\(field)` \(message).",
            extensions: ["field": field])
    }
}
