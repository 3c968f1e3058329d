import Crypto
import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// The questionnaire's versions, the screening of each confirmed appointment, and the evaluation of answers.
struct Screenings: Sendable {
    let database: any DatabaseWriter
    /// How long before the visit the questionnaire may be answered (`YUNZHEN_SCREENING_OPENS_HOURS`, default 24);
    /// it closes when the visit ends.
    let opensBefore: TimeInterval
    static let source = "/yunzhen/screening"

    struct Published: ResponseEncodable, Sendable {
        var version: Int
        var publishedAt: Date
        var questionnaire: Questionnaire
    }

    struct ScreeningView: ResponseEncodable, Sendable, Equatable {
        var id: String
        var appointmentId: String
        var patientId: String
        var visitStart: Date
        var visitEnd: Date
        var opensAt: Date
        var closesAt: Date
        /// pending, passed, failed, cancelled
        var status: String
        var result: Result?

        struct Result: Codable, Sendable, Equatable {
            var questionnaireVersion: Int
            var ruleId: String
            var outcome: String
            var passes: Bool
            var advice: String
            var adviceEn: String
            /// Where the outcome sends the patient, e.g. 发热门诊.
            var goTo: String
            var goToEn: String
            var submittedAt: Date
        }
    }

    struct Submission: Decodable, Sendable {
        /// The version the patient was shown.
        var version: Int
        var answers: [String: Questionnaire.AnswerValue]
        /// Follow-up texts of yes answers, by item.
        var details: [String: String]?
    }

    // MARK: Versions

    func publish(_ questionnaire: Questionnaire, audit: RequestAudit, now: Date) async throws -> Published {
        let problems = questionnaire.problems()
        guard problems.isEmpty else {
            throw Problem(
                .unprocessableContent, code: "invalid-questionnaire",
                detail: problems.joined(separator: "; ") + ".")
        }
        let content = try Self.encoder.encode(questionnaire)
        let checksum = Secrets.hex(SHA256.hash(data: content))
        return try await database.write { db in
            if let existing = try Int.fetchOne(
                db, sql: "SELECT version FROM questionnaire WHERE checksum = ?", arguments: [checksum])
            {
                throw Problem(
                    .conflict, code: "questionnaire-unchanged",
                    detail: "This questionnaire is already published as version \(existing).",
                    extensions: ["version": "\(existing)"])
            }
            let version = (try Int.fetchOne(db, sql: "SELECT max(version) FROM questionnaire") ?? 0) + 1
            try db.execute(
                sql: """
                    INSERT INTO questionnaire (version, content, checksum, published_at, published_by)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [version, String(decoding: content, as: UTF8.self), checksum, now, audit.actor])
            try audit.record(.create, "questionnaire", id: "\(version)", in: db)
            return Published(version: version, publishedAt: now, questionnaire: questionnaire)
        }
    }

    /// The version patients answer now: the latest published.
    func current() async throws -> Published {
        guard let published = try await database.read({ db in try Self.current(in: db) }) else {
            throw Problem(
                .serviceUnavailable, code: "no-questionnaire",
                detail: "No screening questionnaire is published yet: an admin publishes one first.")
        }
        return published
    }

    static func current(in db: Database) throws -> Published? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM questionnaire ORDER BY version DESC LIMIT 1")
        else { return nil }
        return Published(
            version: row["version"], publishedAt: row["published_at"],
            questionnaire: try decoder.decode(Questionnaire.self, from: Data((row["content"] as String).utf8)))
    }

    // MARK: From registration's events

    /// Handles registration's events in the consumer's transaction: a registered patient is remembered (who
    /// manages them), a confirmed appointment gets its screening (announced), a cancelled one's screening is
    /// cancelled and its pass revoked. Repeats change nothing.
    func handle(_ event: ConsumedEvent, in db: Database) throws {
        switch event.header.type {
        case AppointmentConfirmed.eventType:
            let appointment = try event.decode(AppointmentConfirmed.self).data.appointment
            let id = "scr_" + Secrets.randomHex(bytes: 10)
            let opens = appointment.visitStart.addingTimeInterval(-opensBefore)
            try db.execute(
                sql: """
                    INSERT INTO screening (id, appointment_id, patient_id, account_id, visit_start, visit_end, opens_at,
                        closes_at, status, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)
                    ON CONFLICT (appointment_id) DO NOTHING
                    """,
                arguments: [
                    id, appointment.appointmentID, appointment.patientID, appointment.accountID,
                    appointment.visitStart, appointment.visitEnd, opens, appointment.visitEnd, Date(),
                ])
            guard db.changesCount == 1 else { return }
            try Outbox.publish(
                ScreeningRequested(
                    screeningID: id, appointmentID: appointment.appointmentID, patientID: appointment.patientID,
                    accountID: appointment.accountID, opensAt: opens, closesAt: appointment.visitEnd),
                source: Self.source, in: db)
        case PatientRegistered.eventType:
            let patient = try event.decode(PatientRegistered.self).data
            try db.execute(
                sql: """
                    INSERT INTO patient (id, account_id, relationship, birth_year, sex) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    """,
                arguments: [patient.patientID, patient.accountID, patient.relationship, patient.birthYear, patient.sex])
        case AppointmentCancelled.eventType:
            // Answered or not, the screening and its pass end with the appointment; the answers stay on record.
            let appointment = try event.decode(AppointmentCancelled.self).data.appointment
            let now = Date()
            try db.execute(
                sql:
                    "UPDATE screening SET status = 'cancelled', cancelled_at = ? WHERE appointment_id = ? AND status != 'cancelled'",
                arguments: [now, appointment.appointmentID])
            try EntryPasses.revoke(appointment: appointment.appointmentID, at: now, in: db)
        default:
            break
        }
    }

    // MARK: Answering

    /// The account's screenings, newest visit first.
    func list(account: String, in db: Database) throws -> [ScreeningView] {
        try String.fetchAll(
            db, sql: "SELECT id FROM screening WHERE account_id = ? ORDER BY visit_start DESC", arguments: [account]
        ).compactMap { try Self.view($0, in: db) }
    }

    /// Validates and evaluates the answers of a pending screening in its window, against the version the patient
    /// was shown, which must be the current one; stores them with the rule that fired and announces the result.
    func submit(_ id: String, _ submission: Submission, now: Date, in db: Database) throws -> ScreeningView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM screening WHERE id = ?", arguments: [id]) else {
            throw Problem.notFound("There is no screening `\(id)`.")
        }
        switch row["status"] as String {
        case "pending": break
        case "cancelled":
            throw Problem(.conflict, code: "screening-cancelled", detail: "The appointment was cancelled.")
        default:
            throw Problem(
                .conflict, code: "already-answered", detail: "This screening was answered already; it cannot change.")
        }
        guard now >= row["opens_at"] as Date else {
            throw Problem(
                .conflict, code: "not-open-yet",
                detail: "The questionnaire opens \(Int(opensBefore / 3600)) hours before the visit.",
                extensions: ["opensAt": ISO8601DateFormatter().string(from: row["opens_at"])])
        }
        guard now < row["closes_at"] as Date else {
            throw Problem(.conflict, code: "window-closed", detail: "The visit is over: this screening is closed.")
        }
        guard let current = try Self.current(in: db) else {
            throw Problem(.serviceUnavailable, code: "no-questionnaire", detail: "No questionnaire is published.")
        }
        guard submission.version == current.version else {
            throw Problem(
                .conflict, code: "questionnaire-changed",
                detail:
                    "These answers are for version \(submission.version); the questionnaire is now version \(current.version). Load it and answer again.",
                extensions: ["version": "\(current.version)"])
        }
        let details = submission.details ?? [:]
        let problems = current.questionnaire.validate(submission.answers, details: details)
        guard problems.isEmpty else {
            throw Problem(
                .unprocessableContent, code: "invalid-answers",
                detail: problems.map { "`\($0.item)` \($0.message)" }.joined(separator: "; ") + ".",
                extensions: ["items": problems.map(\.item).joined(separator: ",")])
        }
        let rule = current.questionnaire.evaluate(submission.answers)
        try db.execute(
            sql: """
                INSERT INTO screening_answer (screening_id, questionnaire_version, answers, details, rule_id, outcome,
                    submitted_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, current.version, String(decoding: try Self.encoder.encode(submission.answers), as: UTF8.self),
                String(decoding: try Self.encoder.encode(details), as: UTF8.self), rule.id, rule.outcome.rawValue, now,
            ])
        let passed = rule.outcome.passes
        try db.execute(
            sql: "UPDATE screening SET status = ? WHERE id = ?", arguments: [passed ? "passed" : "failed", id])
        let evaluated = ScreeningEvaluated(
            screeningID: id, appointmentID: row["appointment_id"], patientID: row["patient_id"],
            accountID: row["account_id"], questionnaireVersion: current.version, ruleID: rule.id,
            outcome: rule.outcome.rawValue)
        if passed {
            try EntryPasses.issue(
                screeningID: id, patientID: row["patient_id"], visitStart: row["visit_start"], now: now, in: db)
            try Outbox.publish(ScreeningPassed(screening: evaluated), source: Self.source, in: db)
        } else {
            try Outbox.publish(ScreeningFailed(screening: evaluated), source: Self.source, in: db)
        }
        return try Self.view(id, in: db)!
    }

    static func view(_ id: String, in db: Database) throws -> ScreeningView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT screening.*, screening_answer.questionnaire_version, screening_answer.rule_id,
                        screening_answer.outcome, screening_answer.submitted_at, questionnaire.content
                    FROM screening
                    LEFT JOIN screening_answer ON screening_answer.screening_id = screening.id
                    LEFT JOIN questionnaire ON questionnaire.version = screening_answer.questionnaire_version
                    WHERE screening.id = ?
                    """,
                arguments: [id])
        else { return nil }
        var result: ScreeningView.Result?
        if let version = row["questionnaire_version"] as Int?, let ruleID = row["rule_id"] as String?,
            let content = row["content"] as String?,
            let rule = try decoder.decode(Questionnaire.self, from: Data(content.utf8)).rules.first(where: {
                $0.id == ruleID
            })
        {
            result = .init(
                questionnaireVersion: version, ruleId: ruleID, outcome: rule.outcome.rawValue,
                passes: rule.outcome.passes, advice: rule.advice, adviceEn: rule.adviceEn,
                goTo: rule.outcome.destination.chinese, goToEn: rule.outcome.destination.english,
                submittedAt: row["submitted_at"])
        }
        return ScreeningView(
            id: id, appointmentId: row["appointment_id"], patientId: row["patient_id"], visitStart: row["visit_start"],
            visitEnd: row["visit_end"], opensAt: row["opens_at"], closesAt: row["closes_at"], status: row["status"],
            result: result)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    static let decoder = JSONDecoder()
}

/// Who may see a patient's data here: the account that manages them (as registration's events and the screenings
/// say), and the doctor who took one of their epidemic questions. The gate checks passes, not answers; any other
/// staff member who must read a screening uses break-glass.
struct ScreeningRelationships: PatientRelationships {
    func managingAccount(of patient: String, in db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT account_id FROM patient WHERE id = ?", arguments: [patient])
            ?? String.fetchOne(
                db, sql: "SELECT account_id FROM screening WHERE patient_id = ? LIMIT 1", arguments: [patient])
    }

    func relationship(of staff: Principal, to patient: String, in db: Database) throws -> String? {
        guard staff.has(.doctor) else { return nil }
        let taken = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM epidemic_consultation WHERE patient_id = ? AND taken_by = ? LIMIT 1",
            arguments: [patient, staff.subject])
        return taken == true ? "epidemic-consultation" : nil
    }
}
