import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// Free epidemic advice (免费疫情咨询): a patient asks a question about the epidemic, free of charge and without
/// an appointment; it is recorded here and announced (`epidemic-consult-requested`) so that the doctors on duty
/// see it; a doctor takes it, and the conversation itself lives in consult.
struct EpidemicConsultations: Sendable {
    let database: any DatabaseWriter
    /// Open questions an account may have at once: the service is free, and the doctors on duty are few.
    static let openLimit = 3

    enum Topic: String, Codable, Sendable, CaseIterable {
        /// 发热、症状 / 就诊指引 / 出行与流行病学史 / 疫苗 / 防护 / 检测 / 其他
        case symptoms, visiting, travel, vaccination, protection, testing, other
    }

    struct Question: Decodable, Sendable {
        var patientId: String
        var topic: Topic
        var question: String
    }

    struct ConsultationView: ResponseEncodable, Sendable, Equatable {
        var id: String
        var patientId: String
        var topic: String
        var question: String
        /// `open` (waiting for a doctor), `taken` (a doctor answers in consult).
        var status: String
        var openedAt: Date
        var takenBy: String?
        var takenAt: Date?
        /// What a doctor needs without the patient's name: age band and sex, from registration's event.
        var birthYear: Int?
        var sex: String?
    }

    struct ConsultationList: ResponseEncodable, Sendable { var consultations: [ConsultationView] }

    // MARK: Patients

    /// Records the question for `patient` (whom the caller manages, checked by the access rule) and announces it.
    static func open(_ question: Question, account: String, now: Date, in db: Database) throws -> ConsultationView {
        let text = question.question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (5...1000).contains(text.count) else {
            throw Problem(
                .unprocessableContent, code: "invalid-question",
                detail: "`question` must say what you want to know, in 5–1000 characters.",
                extensions: ["field": "question"])
        }
        let open =
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM epidemic_consultation WHERE account_id = ? AND status = 'open'",
                arguments: [account]) ?? 0
        guard open < openLimit else {
            throw Problem(
                .conflict, code: "too-many-open-questions",
                detail:
                    "This account has \(open) questions waiting for a doctor; a doctor answers them first. Urgent symptoms need the fever clinic, not a message."
            )
        }
        let id = "epc_" + Secrets.randomHex(bytes: 8)
        try db.execute(
            sql: """
                INSERT INTO epidemic_consultation (id, patient_id, account_id, topic, question, status, opened_at)
                VALUES (?, ?, ?, ?, ?, 'open', ?)
                """,
            arguments: [id, question.patientId, account, question.topic.rawValue, text, now])
        let view = try view(id, in: db)!
        try Outbox.publish(
            EpidemicConsultRequested(
                consultationID: id, patientID: question.patientId, accountID: account, topic: view.topic,
                question: text, openedAt: now),
            source: Screenings.source, in: db)
        return view
    }

    static func list(account: String, in db: Database) throws -> [ConsultationView] {
        try String.fetchAll(
            db, sql: "SELECT id FROM epidemic_consultation WHERE account_id = ? ORDER BY opened_at DESC",
            arguments: [account]
        ).compactMap { try view($0, in: db) }
    }

    // MARK: Doctors on duty

    /// The questions waiting for a doctor, oldest first.
    static func waiting(in db: Database) throws -> [ConsultationView] {
        try String.fetchAll(
            db, sql: "SELECT id FROM epidemic_consultation WHERE status = 'open' ORDER BY opened_at LIMIT 200"
        ).compactMap { try view($0, in: db) }
    }

    /// A doctor takes a waiting question; from then on it is theirs (and their relationship to the patient here).
    /// Taking one's own question again changes nothing.
    static func take(_ id: String, doctor: String, now: Date, in db: Database) throws -> ConsultationView {
        try db.execute(
            sql:
                "UPDATE epidemic_consultation SET status = 'taken', taken_by = ?, taken_at = ? WHERE id = ? AND status = 'open'",
            arguments: [doctor, now, id])
        guard db.changesCount == 1 else {
            guard let existing = try view(id, in: db) else {
                throw Problem.notFound("There is no epidemic consultation `\(id)`.")
            }
            if existing.takenBy == doctor { return existing }  // a retried request
            throw Problem(
                .conflict, code: "already-taken", detail: "Another doctor took this question already.",
                extensions: ["takenBy": existing.takenBy ?? ""])
        }
        return try view(id, in: db)!
    }

    static func view(_ id: String, in db: Database) throws -> ConsultationView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT epidemic_consultation.*, patient.birth_year, patient.sex
                    FROM epidemic_consultation LEFT JOIN patient ON patient.id = epidemic_consultation.patient_id
                    WHERE epidemic_consultation.id = ?
                    """,
                arguments: [id])
        else { return nil }
        return ConsultationView(
            id: id, patientId: row["patient_id"], topic: row["topic"], question: row["question"],
            status: row["status"], openedAt: row["opened_at"], takenBy: row["taken_by"], takenAt: row["taken_at"],
            birthYear: row["birth_year"], sex: row["sex"])
    }
}
