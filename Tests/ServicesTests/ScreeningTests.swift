import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit
import YunzhenStorage

@testable import ScreeningService

/// The seeded questionnaire of CLINICAL.md §5 and its rules: every outcome path, the boundaries, and each way an
/// answer can be wrong.
@Suite struct QuestionnaireRulesTests {
    static let seeded: Questionnaire = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("seeds/screening-questionnaire.json")
        return try! JSONDecoder().decode(Questionnaire.self, from: Data(contentsOf: file))
    }()

    typealias Answers = [String: Questionnaire.AnswerValue]

    /// A healthy patient's answers: green code, 36.5 ℃, no symptoms, no history, a negative test, declared.
    static let healthy: Answers = {
        var answers: Answers = [
            "Q1": .number(36.5), "Q2": .choices(["none"]), "Q8": .choice("green"), "Q12": .choice("yes"),
            "Q14": .bool(true),
        ]
        for item in ["Q3", "Q4", "Q5", "Q6", "Q7", "Q9", "Q10", "Q11", "Q13"] { answers[item] = .bool(false) }
        return answers
    }()

    static func with(_ changes: Answers) -> Answers { healthy.merging(changes) { $1 } }

    @Test func theSeededQuestionnaireIsPublishable() {
        #expect(Self.seeded.problems().isEmpty)
        #expect(
            Self.seeded.items.count == 14 && Self.seeded.rules.map(\.id) == ["R1", "R2", "R3", "R4", "R5", "R6", "R7"])
    }

    @Test(
        arguments: [
            ([:], "R7", "normal-visit"),
            (["Q1": .number(37.2)], "R7", "normal-visit"),
            (["Q1": .number(37.3)], "R3", "fever-clinic"),
            (["Q1": .number(39.0)], "R3", "fever-clinic"),
            (["Q8": .choice("red")], "R1", "do-not-enter"),
            (["Q4": .bool(true)], "R1", "do-not-enter"),
            (["Q10": .bool(true)], "R1", "do-not-enter"),
            (["Q8": .choice("yellow")], "R2", "fever-clinic"),
            (["Q2": .choices(["dry-cough"])], "R4", "fever-clinic"),
            (["Q2": .choices(["fever", "diarrhea"])], "R4", "fever-clinic"),
            (["Q3": .bool(true)], "R5", "fever-clinic"),
            (["Q5": .bool(true)], "R5", "fever-clinic"),
            (["Q6": .bool(true)], "R5", "fever-clinic"),
            (["Q7": .bool(true)], "R5", "fever-clinic"),
            (["Q9": .bool(true)], "R5", "fever-clinic"),
            (["Q11": .bool(true)], "R5", "fever-clinic"),
            (["Q13": .bool(true)], "R5", "fever-clinic"),
            (["Q12": .choice("no")], "R6", "nucleic-acid-test"),
            (["Q12": .choice("not-required")], "R7", "normal-visit"),
            // First match wins: a red code with fever is R1, a yellow code with fever R2, fever with a missing test R3.
            (["Q8": .choice("red"), "Q1": .number(38.5)], "R1", "do-not-enter"),
            (["Q8": .choice("yellow"), "Q1": .number(38.5)], "R2", "fever-clinic"),
            (["Q1": .number(37.5), "Q12": .choice("no")], "R3", "fever-clinic"),
        ] as [(Answers, String, String)])
    func eachRuleDecidesItsCase(changes: Answers, rule: String, outcome: String) {
        let answers = Self.with(changes)
        var details: [String: String] = [:]
        for item in ["Q3", "Q7", "Q9"] where answers[item] == .bool(true) { details[item] = "上海" }
        #expect(Self.seeded.validate(answers, details: details).isEmpty)
        let decided = Self.seeded.evaluate(answers)
        #expect(decided.id == rule && decided.outcome.rawValue == outcome, "\(changes)")
    }

    @Test func eachWrongAnswerIsNamedWithItsItem() {
        var answers = Self.with([
            "Q1": .number(37.25), "Q2": .choices(["none", "fever"]), "Q3": .bool(true), "Q8": .choice("blue"),
            "Q14": .bool(false), "Q99": .bool(true), "Q4": .choice("no"),
        ])
        answers["Q13"] = nil
        let problems = Self.seeded.validate(answers, details: [:])
        #expect(
            problems.map(\.item) == ["Q1", "Q13", "Q14", "Q2", "Q3", "Q4", "Q8", "Q99"],
            "\(problems)")
        #expect(problems.first { $0.item == "Q1" }?.message == "must have at most 1 decimal")
        #expect(problems.first { $0.item == "Q2" }?.message.contains("cannot be combined") == true)
        #expect(problems.first { $0.item == "Q3" }?.message.contains("where") == true)
        #expect(problems.first { $0.item == "Q13" }?.message == "is not answered")
        let range = Self.seeded.validate(Self.with(["Q1": .number(33.9)]), details: [:])
        #expect(range.map(\.message) == ["must be from 34.0 to 43.0 ℃"])
    }

    @Test func aQuestionnaireWhoseRulesReadUnknownItemsOrEndOpenIsRefused() {
        var broken = Self.seeded
        broken.rules.removeLast()
        broken.rules[0].when = .compare(item: "Q42", op: .eq, value: .bool(true))
        let problems = broken.problems()
        #expect(problems.contains { $0.contains("Q42") })
        #expect(problems.contains { $0.contains("last rule must hold always") })
    }
}

/// Screenings through screening's routes on a real (in-memory) SQLite database: opened by registration's events
/// (exactly once), answered by the patient in the window, against the current version.
@Suite struct ScreeningRoutesTests {
    @Test func aConfirmedAppointmentOpensOneScreeningThePatientAnswersOnce() async throws {
        try await ScreeningFixture.run { fixture in
            let database = fixture.database
            let clock = fixture.clock
            let event = AppointmentConfirmed(
                appointment: ScreeningFixture.appointment("apt_1", patient: "pat_1", account: "acct_a"))
            // Delivered twice (a redelivery after a crash): one screening, one announcement.
            for _ in 0..<2 { try await fixture.deliver(event) }
            let admin = try await fixture.headers("staff_admin", .admin)
            let patient = try await fixture.headers("acct_a", .patient)
            let other = try await fixture.headers("acct_b", .patient)
            let seed = try JSONSerialization.jsonObject(
                with: try JSONEncoder().encode(QuestionnaireRulesTests.seeded))
            #expect(
                try await fixture.send(.get, "/questionnaires/current", patient).1["code"] as? String
                    == "no-questionnaire")
            #expect(try await fixture.send(.post, "/admin/questionnaires", patient, seed).0 == .forbidden)
            let published = try await fixture.send(.post, "/admin/questionnaires", admin, seed)
            #expect(published.0 == .created && published.1["version"] as? Int == 1)
            #expect(
                try await fixture.send(.post, "/admin/questionnaires", admin, seed).1["code"] as? String
                    == "questionnaire-unchanged")

            let list = try await fixture.send(.get, "/me/screenings", patient)
            let screenings = list.1["screenings"] as! [[String: Any]]
            #expect(screenings.count == 1 && screenings[0]["status"] as? String == "pending")
            let id = screenings[0]["id"] as! String
            let answers = try JSONSerialization.jsonObject(
                with: try JSONEncoder().encode(QuestionnaireRulesTests.healthy))

            // Too early: the window opens 24 hours before the visit (30 hours away).
            let early = try await fixture.send(
                .post, "/screenings/\(id)/answers", patient, ["version": 1, "answers": answers])
            #expect(early.1["code"] as? String == "not-open-yet")
            clock.advance(minutes: 7 * 60)
            #expect(
                try await fixture.send(.post, "/screenings/\(id)/answers", patient, ["version": 2, "answers": answers])
                    .1[
                        "code"]
                    as? String == "questionnaire-changed")
            let invalid = try await fixture.send(
                .post, "/screenings/\(id)/answers", patient, ["version": 1, "answers": ["Q1": 40.0]])
            #expect(invalid.0 == .unprocessableContent && (invalid.1["items"] as? String)?.contains("Q14") == true)
            // Another account's screening does not exist for it.
            #expect(
                try await fixture.send(.post, "/screenings/\(id)/answers", other, ["version": 1, "answers": answers]).0
                    == .notFound)

            var fever = QuestionnaireRulesTests.healthy
            fever["Q1"] = .number(37.3)
            let feverAnswers = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(fever))
            let answered = try await fixture.send(
                .post, "/screenings/\(id)/answers", patient, ["version": 1, "answers": feverAnswers])
            #expect(answered.0 == .ok)
            #expect(answered.1["status"] as? String == "failed")
            let result = answered.1["result"] as! [String: Any]
            #expect(result["ruleId"] as? String == "R3" && result["outcome"] as? String == "fever-clinic")
            #expect((result["advice"] as? String)?.contains("发热门诊") == true)
            #expect(
                try await fixture.send(.post, "/screenings/\(id)/answers", patient, ["version": 1, "answers": answers])
                    .1[
                        "code"]
                    as? String == "already-answered")

            // The hospital's view: by day, the pass rate and the rules that decided.
            let day = HospitalCalendar.shared.date(of: clock.now)
            #expect(try await fixture.send(.get, "/admin/statistics/screenings", patient).0 == .forbidden)
            let statistics = try await fixture.send(.get, "/admin/statistics/screenings?from=\(day)&to=\(day)", admin)
            let totals = statistics.1["totals"] as! [String: Any]
            #expect(totals["answered"] as? Int == 1 && totals["passed"] as? Int == 0)
            #expect(totals["byRule"] as? [String: Int] == ["R3": 1])
            #expect(totals["byOutcome"] as? [String: Int] == ["fever-clinic": 1])
            let bad = try await fixture.send(.get, "/admin/statistics/screenings?from=2026-02-30", admin)
            #expect(bad.1["code"] as? String == "invalid-query")
            let events = try await database.writer.read { db in
                try Data.fetchAll(db, sql: "SELECT event FROM queue_outbox ORDER BY id").map {
                    try EventCoding.decoder.decode(CloudEventHeader.self, from: $0).type
                }
            }
            #expect(events == [ScreeningRequested.eventType, ScreeningFailed.eventType])
            let trail = try await database.writer.read { db in
                try AuditTrail.page(AuditQuery(patientID: "pat_1"), in: db).map {
                    "\($0.actor) \($0.action) \($0.outcome)"
                }
            }
            #expect(trail.contains("acct_a update success") && trail.contains("acct_b update denied"))
        }
    }

    @Test func aCancelledAppointmentCancelsItsPendingScreening() async throws {
        try await ScreeningFixture.run { fixture in
            let screening = try await fixture.confirmedAppointment("apt_2", patient: "pat_2", account: "acct_c")
            try await fixture.deliver(
                AppointmentCancelled(
                    appointment: ScreeningFixture.appointment("apt_2", patient: "pat_2", account: "acct_c"),
                    reason: "patient", note: "", refundFen: 5000))
            let view = try await fixture.send(
                .get, "/screenings/\(screening)", try await fixture.headers("acct_c", .patient))
            #expect(view.1["status"] as? String == "cancelled")
            let answered = try await fixture.answer(screening, as: "acct_c", QuestionnaireRulesTests.healthy)
            #expect(answered.0 == .conflict && answered.1["code"] as? String == "screening-cancelled")
        }
    }

    /// The access matrix of screening's patient-data endpoints: every caller that is not the patient's account (or
    /// the doctor who took their question) is refused exactly as for an id that does not exist.
    @Test(
        arguments: [
            (HTTPRequest.Method.get, "/screenings/{screening}", nil),
            (.post, "/screenings/{screening}/answers", #"{"version":1,"answers":{}}"#),
            (.get, "/screenings/{screening}/pass", nil), (.get, "/epidemic-consultations/{consultation}", nil),
            (.post, "/epidemic-consultations", #"{"patientId":"{patient}","topic":"other","question":"能来医院吗？我发烧了"}"#),
        ] as [(HTTPRequest.Method, String, String?)])
    func anotherPatientsDataIsRefusedAsIfItDidNotExist(method: HTTPRequest.Method, path: String, body: String?)
        async throws
    {
        try await ScreeningFixture.run { fixture in
            let screening = try await fixture.confirmedAppointment("apt_9", patient: "pat_9", account: "acct_owner")
            #expect(try await fixture.answer(screening, as: "acct_owner", QuestionnaireRulesTests.healthy).0 == .ok)
            let consultation =
                try await fixture.send(
                    .post, "/epidemic-consultations", try await fixture.headers("acct_owner", .patient),
                    ["patientId": "pat_9", "topic": "testing", "question": "抗原阳性还能按时复诊吗？"]
                ).1["id"] as! String
            let callers: [(String, Principal.Kind, Set<Role>)] = [
                ("acct_other", .patient, [.patient]), ("staff_doc", .staff, [.doctor]),
                ("staff_nurse", .staff, [.nurse]), ("staff_ph", .staff, [.pharmacist]),
                ("staff_gate", .staff, [.gate]), ("staff_admin", .staff, [.admin]),
                ("intg_1", .integrator, [.integrator]),
            ]
            for (subject, kind, roles) in callers {
                let headers: HTTPFields = [
                    .authorization: "Bearer \(try await TestIdentity.token(subject, kind: kind, roles: roles))",
                    .contentType: "application/json",
                ]
                var answers: [String] = []
                for ids in [
                    ["{screening}": screening, "{consultation}": consultation, "{patient}": "pat_9"],
                    [
                        "{screening}": "scr_00000000000000000000", "{consultation}": "epc_0000000000000000",
                        "{patient}": "pat_00000000000000000000",
                    ],
                ] {
                    func fill(_ text: String) -> String {
                        ids.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
                    }
                    let response = try await fixture.client.execute(
                        uri: fill(path), method: method, headers: headers,
                        body: body.map { ByteBuffer(string: fill($0)) })
                    let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                    answers.append(
                        "\(response.status.code) "
                            + ids.reduce(problem.detail) { $0.replacingOccurrences(of: $1.value, with: $1.key) })
                }
                #expect(answers[0] == answers[1], "\(subject) \(method) \(path): \(answers)")
                #expect(!answers[0].hasPrefix("2"), "\(subject) \(method) \(path)")
            }
        }
    }
}
