import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenServiceKit

/// Screening for the hospital, by Beijing date: screenings answered, the pass rate and the outcomes by rule (by
/// the answer's date); entries admitted and refused at the doors; free epidemic questions asked. For an admin page
/// to chart.
struct ScreeningStatistics: Sendable {
    let database: any DatabaseWriter

    struct Day: ResponseEncodable, Equatable, Sendable {
        var date: String
        var answered = 0
        var passed = 0
        /// `rule id` → count (R1 … R7 for the seeded rules; a rule of an older version keeps its id).
        var byRule: [String: Int] = [:]
        /// `outcome` → count.
        var byOutcome: [String: Int] = [:]
        /// Passes admitted at a door, and checks refused (a wrong, expired, revoked or used pass).
        var entered = 0
        var refusedAtGate = 0
        var epidemicQuestions = 0

        var passRate: Double { answered == 0 ? 0 : Double(passed) / Double(answered) }

        enum CodingKeys: String, CodingKey {
            case date, answered, passed, byRule, byOutcome, passRate, entered, refusedAtGate, epidemicQuestions
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(date, forKey: .date)
            try container.encode(answered, forKey: .answered)
            try container.encode(passed, forKey: .passed)
            try container.encode(byRule, forKey: .byRule)
            try container.encode(byOutcome, forKey: .byOutcome)
            try container.encode((passRate * 1000).rounded() / 1000, forKey: .passRate)
            try container.encode(entered, forKey: .entered)
            try container.encode(refusedAtGate, forKey: .refusedAtGate)
            try container.encode(epidemicQuestions, forKey: .epidemicQuestions)
        }
    }

    struct Report: ResponseEncodable, Sendable {
        var from: String
        var to: String
        /// Every date of the range, empty days included.
        var days: [Day]
        var totals: Day
    }

    let calendar = HospitalCalendar.shared

    func report(from: String, to: String) async throws -> Report {
        guard let start = calendar.midnight(of: from) else {
            throw Problem(.badRequest, code: "invalid-query", detail: "`from` must be a date YYYY-MM-DD.")
        }
        guard let end = calendar.midnight(of: to), end >= start, end.timeIntervalSince(start) <= 366 * 86400 else {
            throw Problem(
                .badRequest, code: "invalid-query",
                detail: "`to` must be a date YYYY-MM-DD from `from` to a year after.")
        }
        let (answers, checks, questions) = try await database.read { db in
            let day = { (column: String) in "date(\(column), \(HospitalCalendar.sqliteModifier))" }
            return (
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT \(day("submitted_at")) AS day, rule_id, outcome FROM screening_answer WHERE day BETWEEN ? AND ?",
                    arguments: [from, to]),
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(day("checked_at")) AS day, result = 'entered' AS entered, count(*) AS count
                        FROM gate_check WHERE day BETWEEN ? AND ? GROUP BY 1, 2
                        """,
                    arguments: [from, to]),
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(day("opened_at")) AS day, count(*) AS count
                        FROM epidemic_consultation WHERE day BETWEEN ? AND ? GROUP BY 1
                        """,
                    arguments: [from, to])
            )
        }
        var days: [String: Day] = [:]
        func update(_ date: String, _ change: (inout Day) -> Void) {
            var day = days[date] ?? Day(date: date)
            change(&day)
            days[date] = day
        }
        for row in answers {
            let outcome: String = row["outcome"]
            update(row["day"]) { day in
                day.answered += 1
                if outcome == Questionnaire.Outcome.normalVisit.rawValue { day.passed += 1 }
                day.byRule[row["rule_id"], default: 0] += 1
                day.byOutcome[outcome, default: 0] += 1
            }
        }
        for row in checks {
            let count: Int = row["count"]
            update(row["day"]) { day in
                if row["entered"] as Bool { day.entered += count } else { day.refusedAtGate += count }
            }
        }
        for row in questions { update(row["day"]) { $0.epidemicQuestions += row["count"] } }
        var series: [Day] = []
        var totals = Day(date: "\(from)/\(to)")
        var date = from
        while date <= to {
            let day = days[date] ?? Day(date: date)
            series.append(day)
            totals.answered += day.answered
            totals.passed += day.passed
            totals.byRule.merge(day.byRule, uniquingKeysWith: +)
            totals.byOutcome.merge(day.byOutcome, uniquingKeysWith: +)
            totals.entered += day.entered
            totals.refusedAtGate += day.refusedAtGate
            totals.epidemicQuestions += day.epidemicQuestions
            guard let next = calendar.date(date, plusDays: 1) else { break }
            date = next
        }
        return Report(from: from, to: to, days: series, totals: totals)
    }
}
