import Crypto
import Foundation
import GRDB
import Hummingbird
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Entry passes: issued when a screening passes, valid for the visit's day (Beijing time), shown as a QR code
/// and an 8-character code, checked at the door by staff with the gate role.
///
/// The gate needs nothing but screening's own database: the signature (keys kept here), the validity the pass
/// carries, the revocation (a cancelled appointment, or an admin) and the entries recorded so far.
struct EntryPasses: Sendable {
    let database: any DatabaseWriter
    /// Whether a pass lets its holder in once only (`YUNZHEN_SCREENING_SINGLE_ENTRY`, default true); otherwise as
    /// often as needed during its day, each entry recorded.
    let singleEntry: Bool

    struct PassView: ResponseEncodable, Sendable {
        var id: String
        var screeningId: String
        var patientId: String
        var visitDate: String
        var validFrom: Date
        var expiresAt: Date
        /// What the QR code carries, for a client that draws its own.
        var token: String
        /// The code to read out when the QR code cannot be scanned, as `XXXX-XXXX`.
        var code: String
        /// `data:image/png;base64,…`
        var qrCode: String
        /// `valid` (not used yet), `used` (entered at least once: with single entry, it lets in no more), `revoked`
        /// or `expired`.
        var status: String
        var revokedReason: String?
        var entries: [Date]
    }

    /// What the gate sends: the scanned token or the typed code, and optionally the patient id read from the
    /// person's own card, which must be the pass's patient.
    struct GateRequest: Decodable, Sendable {
        var pass: String?
        var code: String?
        var patientId: String?
        /// Which door, e.g. `门诊楼东门`.
        var gate: String?
    }

    struct Entry: ResponseEncodable, Sendable {
        var passId: String
        var patientId: String
        var visitDate: String
        var enteredAt: Date
        var gate: String?
        /// Entries of this pass before this one (0 on the first).
        var previousEntries: Int
        /// For the gate keeper to see the pass fits the person (screening keeps no names): from registration.
        var sex: String?
        var birthYear: Int?
    }

    // MARK: Issuing

    /// Issues the pass of screening `screeningID`, which just passed, in its transaction.
    static func issue(
        screeningID: String, patientID: String, visitStart: Date, now: Date, in db: Database
    ) throws {
        let visitDate = HospitalCalendar.shared.date(of: visitStart)
        let validFrom = HospitalCalendar.shared.midnight(of: visitDate)!
        let expiresAt = validFrom.addingTimeInterval(24 * 3600)
        let key = try signingKey(in: db, now: now)
        var code: String
        repeat {
            code = randomCode()
        } while try Bool.fetchOne(db, sql: "SELECT 1 FROM entry_pass WHERE code = ?", arguments: [code]) != nil
        let token = PassToken(
            keyID: key.id, passID: (0..<10).map { _ in UInt8.random(in: 0...255) }, validFrom: validFrom,
            expiresAt: expiresAt, patientID: patientID)
        try db.execute(
            sql: """
                INSERT INTO entry_pass (id, screening_id, patient_id, visit_date, key_id, valid_from, expires_at, code,
                    issued_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                token.passIDString, screeningID, patientID, visitDate, Secrets.hex(key.id), validFrom, expiresAt, code,
                now,
            ])
    }

    /// The newest signing key, made on first use: 256 random bits that never leave this database.
    private static func signingKey(in db: Database, now: Date) throws -> (id: [UInt8], key: SymmetricKey) {
        if let row = try Row.fetchOne(db, sql: "SELECT id, secret FROM pass_key ORDER BY created_at DESC LIMIT 1") {
            return (Secrets.bytes(hex: row["id"])!, SymmetricKey(data: row["secret"] as Data))
        }
        let id = (0..<4).map { _ in UInt8.random(in: 0...255) }
        let key = SymmetricKey(size: .bits256)
        try db.execute(
            sql: "INSERT INTO pass_key (id, secret, created_at) VALUES (?, ?, ?)",
            arguments: [Secrets.hex(id), key.withUnsafeBytes { Data($0) }, now])
        return (id, key)
    }

    /// The pass of a screening the caller may see: its token re-signed from the stored fields, its QR code.
    /// Screenings without a pass say why, and where a failed one sends the patient.
    static func pass(ofScreening screeningID: String, now: Date, in db: Database) throws -> PassView {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM entry_pass WHERE screening_id = ?", arguments: [screeningID])
        else {
            let view = try Screenings.view(screeningID, in: db)!
            switch (view.status, view.result) {
            case ("passed", _):
                // Passed before passes existed (the answers outlive a schema change): issued now.
                try issue(
                    screeningID: screeningID, patientID: view.patientId, visitStart: view.visitStart, now: now, in: db)
                return try pass(ofScreening: screeningID, now: now, in: db)
            case ("pending", _):
                throw Problem(
                    .conflict, code: "screening-not-answered",
                    detail: "Answer the screening questionnaire first: the entry pass comes with a passed screening.")
            case ("cancelled", _):
                throw Problem(.conflict, code: "screening-cancelled", detail: "The appointment was cancelled.")
            case (_, let result?):
                throw Problem(
                    .conflict, code: "no-entry-pass",
                    detail:
                        "This screening did not pass, so there is no entry pass. \(result.goToEn): \(result.adviceEn)",
                    extensions: ["outcome": result.outcome, "goTo": result.goTo, "advice": result.advice])
            default:
                throw Problem.notFound("Screening `\(screeningID)` has no entry pass.")
            }
        }
        return try view(row, now: now, in: db)
    }

    private static func view(_ row: Row, now: Date, in db: Database) throws -> PassView {
        let id: String = row["id"]
        let entries = try entries(of: id, in: db)
        let key = try Data.fetchOne(db, sql: "SELECT secret FROM pass_key WHERE id = ?", arguments: [row["key_id"]])!
        let token = PassToken(
            keyID: Secrets.bytes(hex: row["key_id"])!, passID: Secrets.bytes(hex: String(id.dropFirst("pass_".count)))!,
            validFrom: row["valid_from"], expiresAt: row["expires_at"], patientID: row["patient_id"]
        ).signed(with: SymmetricKey(data: key))
        let qr = try! QRCode(encoding: token, errorCorrection: .medium)  // a pass is ~110 characters: version 5
        let code: String = row["code"]
        let status =
            row["revoked_at"] as Date? != nil
            ? "revoked" : now >= row["expires_at"] as Date ? "expired" : entries.isEmpty ? "valid" : "used"
        return PassView(
            id: id, screeningId: row["screening_id"], patientId: row["patient_id"], visitDate: row["visit_date"],
            validFrom: row["valid_from"], expiresAt: row["expires_at"], token: token,
            code: String(code.prefix(4)) + "-" + String(code.suffix(4)),
            qrCode: "data:image/png;base64," + Data(qr.png(scale: 6)).base64EncodedString(), status: status,
            revokedReason: row["revoked_reason"], entries: entries)
    }

    // MARK: Revoking

    /// Revokes the pass of `appointmentID`'s screening: the appointment was cancelled.
    static func revoke(appointment appointmentID: String, at now: Date, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE entry_pass SET revoked_at = ?, revoked_reason = 'appointment-cancelled', revoked_by = 'registration'
                WHERE revoked_at IS NULL AND screening_id = (SELECT id FROM screening WHERE appointment_id = ?)
                """,
            arguments: [now, appointmentID])
    }

    /// An admin revokes pass `id` (lost phone, the patient's situation changed); the gate refuses it from now on.
    func revoke(_ id: String, reason: String, audit: RequestAudit, now: Date) async throws -> PassView {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (2...200).contains(reason.count) else {
            throw Problem(
                .unprocessableContent, code: "invalid-reason", detail: "`reason` must say why, in 2–200 characters.")
        }
        return try await database.write { db in
            guard
                let patient = try String.fetchOne(
                    db, sql: "SELECT patient_id FROM entry_pass WHERE id = ?", arguments: [id])
            else { throw Problem.notFound("There is no entry pass `\(id)`.") }
            try db.execute(
                sql:
                    "UPDATE entry_pass SET revoked_at = ?, revoked_reason = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [now, reason, audit.actor, id])
            try audit.record(.update, "entry-pass", id: id, patient: patient, in: db)
            return try Self.view(
                try Row.fetchOne(db, sql: "SELECT * FROM entry_pass WHERE id = ?", arguments: [id])!, now: now, in: db)
        }
    }

    // MARK: At the gate

    /// Checks a pass at the door and, when it holds, records the entry. Every check is recorded and audited,
    /// refused ones too (with the reason), so the hospital can see who tried what.
    func check(_ request: GateRequest, audit: RequestAudit, now: Date) async throws -> Entry {
        let trimmed = request.gate?.trimmingCharacters(in: .whitespacesAndNewlines)
        let gate = trimmed?.isEmpty == false ? trimmed : nil
        guard (gate?.count ?? 0) <= 60 else {
            throw Problem(
                .unprocessableContent, code: "invalid-gate", detail: "`gate` names a door in at most 60 characters.")
        }
        guard (request.code?.count ?? 0) <= 20 else {
            throw Problem(
                .unprocessableContent, code: "invalid-gate-request",
                detail: "`code` is the 8 characters under the QR code, like `K7M2-Q9XD`.")
        }
        let singleEntry = self.singleEntry
        let outcome: Result<Entry, Problem> = try await database.write { db in
            let found: Row
            switch try Self.find(request, in: db) {
            case .success(let row): found = row
            case .failure(let problem):
                try Self.recordCheck(
                    pass: nil, patient: nil, gate: gate, result: problem.code, audit: audit, now: now, in: db)
                return .failure(problem)
            }
            let passID: String = found["id"]
            let patient: String = found["patient_id"]
            let entries = try Self.entries(of: passID, in: db)
            let refusal: Problem? =
                if now < found["valid_from"] as Date {
                    Problem(
                        .conflict, code: "pass-not-yet-valid",
                        detail: "This pass is for \(found["visit_date"] as String); it is not valid yet.")
                } else if now >= found["expires_at"] as Date {
                    Problem(
                        .conflict, code: "pass-expired",
                        detail: "This pass was for \(found["visit_date"] as String); it has expired.")
                } else if let reason = found["revoked_reason"] as String? {
                    Problem(
                        .conflict, code: "pass-revoked", detail: "This pass was revoked (\(reason)).",
                        extensions: ["reason": reason])
                } else if let presented = request.patientId, presented != patient {
                    Problem(
                        .conflict, code: "pass-for-another-patient",
                        detail: "This pass belongs to another patient than the card presented.")
                } else if singleEntry, let first = entries.first {
                    Problem(
                        .conflict, code: "pass-already-used",
                        detail:
                            "This pass was used to enter at \(HospitalCalendar.shared.clock(of: first)) (Beijing time) and lets in once.",
                        extensions: ["enteredAt": ISO8601DateFormatter().string(from: first)])
                } else {
                    nil
                }
            try Self.recordCheck(
                pass: passID, patient: patient, gate: gate, result: refusal?.code ?? "entered", audit: audit, now: now,
                in: db)
            if let refusal { return .failure(refusal) }
            let person = try Row.fetchOne(
                db, sql: "SELECT sex, birth_year FROM patient WHERE id = ?", arguments: [patient])
            return .success(
                Entry(
                    passId: passID, patientId: patient, visitDate: found["visit_date"], enteredAt: now, gate: gate,
                    previousEntries: entries.count, sex: person?["sex"], birthYear: person?["birth_year"]))
        }
        return try outcome.get()
    }

    /// The pass the gate presents, by its signed token or its code, or why there is none. A token must verify
    /// before the database is asked anything about it, and must say what the record says.
    private static func find(_ request: GateRequest, in db: Database) throws -> Result<Row, Problem> {
        switch (request.pass, request.code) {
        case (let token?, nil):
            let keys = try Row.fetchAll(db, sql: "SELECT id, secret FROM pass_key")
            let verified: PassToken
            do {
                verified = try PassToken.verify(token) { id in
                    keys.first { Secrets.bytes(hex: $0["id"]) == id }.map { SymmetricKey(data: $0["secret"] as Data) }
                }
            } catch {
                return .failure(
                    invalidPass(
                        error == .malformed
                            ? "This is not an entry pass of this hospital."
                            : "The pass does not verify: it was altered, or not issued by this hospital."))
            }
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM entry_pass WHERE id = ?", arguments: [verified.passIDString]),
                row["patient_id"] as String == verified.patientID, row["valid_from"] as Date == verified.validFrom,
                row["expires_at"] as Date == verified.expiresAt
            else { return .failure(invalidPass("This pass is not on record.")) }
            return .success(row)
        case (nil, let code?):
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM entry_pass WHERE code = ?", arguments: [normalise(code)])
            else {
                return .failure(
                    Problem(.notFound, code: "unknown-pass-code", detail: "No entry pass has the code `\(code)`."))
            }
            return .success(row)
        default:
            return .failure(
                Problem(
                    .unprocessableContent, code: "invalid-gate-request",
                    detail: "Send either `pass` (the scanned QR code) or `code` (the 8 characters), not both."))
        }
    }

    /// When pass `id` let its holder in, first entry first.
    private static func entries(of id: String, in db: Database) throws -> [Date] {
        try Date.fetchAll(
            db, sql: "SELECT checked_at FROM gate_check WHERE pass_id = ? AND result = 'entered' ORDER BY id",
            arguments: [id])
    }

    private static func invalidPass(_ detail: String) -> Problem {
        Problem(.unprocessableContent, code: "invalid-pass", detail: detail)
    }

    private static func recordCheck(
        pass: String?, patient: String?, gate: String?, result: String, audit: RequestAudit, now: Date,
        in db: Database
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO gate_check (pass_id, patient_id, gate, checked_by, checked_at, result)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
            arguments: [pass, patient, gate, audit.actor, now, result])
        try audit.record(
            .create, "gate-check", id: "\(db.lastInsertedRowID)", patient: patient,
            outcome: result == "entered" ? .success : .denied, in: db)
    }

    // MARK: Codes

    /// Crockford's base32: no I, L, O or U, so a code read out loud or typed is not misread.
    static let codeAlphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    static func randomCode() -> String {
        String((0..<8).map { _ in codeAlphabet.randomElement()! })
    }

    /// What a gate keeper typed, as stored: upper case, no dashes or spaces, O read as 0 and I or L as 1.
    static func normalise(_ code: String) -> String {
        String(
            code.uppercased().compactMap { character -> Character? in
                switch character {
                case "-", " ": nil
                case "O": "0"
                case "I", "L": "1"
                default: character
                }
            })
    }
}
