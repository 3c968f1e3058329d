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

        mutating func add(_ other: Day) {
            answered += other.answered
            passed += other.passed
            byRule.merge(other.byRule, uniquingKeysWith: +)
            byOutcome.merge(other.byOutcome, uniquingKeysWith: +)
            entered += other.entered
            refusedAtGate += other.refusedAtGate
            epidemicQuestions += other.epidemicQuestions
        }

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

    func report(_ range: StatisticsRange) async throws -> Report {
        let (answers, checks, questions) = try await database.read { db in
            let day = { (column: String) in "date(\(column), \(HospitalCalendar.sqliteModifier))" }
            return (
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT \(day("submitted_at")) AS day, rule_id, outcome FROM screening_answer WHERE day BETWEEN ? AND ?",
                    arguments: [range.from, range.to]),
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(day("checked_at")) AS day, result = 'entered' AS entered, count(*) AS count
                        FROM gate_check WHERE day BETWEEN ? AND ? GROUP BY 1, 2
                        """,
                    arguments: [range.from, range.to]),
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(day("opened_at")) AS day, count(*) AS count
                        FROM epidemic_consultation WHERE day BETWEEN ? AND ? GROUP BY 1
                        """,
                    arguments: [range.from, range.to])
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
        let (series, totals) = range.series(days, empty: { Day(date: $0) }, adding: { $0.add($1) })
        return Report(from: range.from, to: range.to, days: series, totals: totals)
    }
}
