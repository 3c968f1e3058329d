import Foundation
import GRDB
import Hummingbird
import YunzhenServiceKit

/// Screening for the hospital, by Beijing date of the answer: screenings answered, the pass rate, and the outcomes
/// by rule, for an admin page to chart.
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

        var passRate: Double { answered == 0 ? 0 : Double(passed) / Double(answered) }

        enum CodingKeys: String, CodingKey { case date, answered, passed, byRule, byOutcome, passRate }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(date, forKey: .date)
            try container.encode(answered, forKey: .answered)
            try container.encode(passed, forKey: .passed)
            try container.encode(byRule, forKey: .byRule)
            try container.encode(byOutcome, forKey: .byOutcome)
            try container.encode((passRate * 1000).rounded() / 1000, forKey: .passRate)
        }
    }

    struct Report: ResponseEncodable, Sendable {
        var from: String
        var to: String
        /// Every date of the range, empty days included.
        var days: [Day]
        var totals: Day
    }

    static let beijing = TimeZone(secondsFromGMT: 8 * 3600)!

    func report(from: String, to: String) async throws -> Report {
        guard let start = Self.midnight(from) else {
            throw Problem(.badRequest, code: "invalid-query", detail: "`from` must be a date YYYY-MM-DD.")
        }
        guard let end = Self.midnight(to), end >= start, end.timeIntervalSince(start) <= 366 * 86400 else {
            throw Problem(
                .badRequest, code: "invalid-query",
                detail: "`to` must be a date YYYY-MM-DD from `from` to a year after.")
        }
        let rows = try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT date(submitted_at, '+8 hours') AS day, rule_id, outcome FROM screening_answer
                    WHERE date(submitted_at, '+8 hours') BETWEEN ? AND ?
                    """,
                arguments: [from, to])
        }
        var days: [String: Day] = [:]
        for row in rows {
            let date: String = row["day"]
            var day = days[date] ?? Day(date: date)
            let outcome: String = row["outcome"]
            day.answered += 1
            if outcome == Questionnaire.Outcome.normalVisit.rawValue { day.passed += 1 }
            day.byRule[row["rule_id"], default: 0] += 1
            day.byOutcome[outcome, default: 0] += 1
            days[date] = day
        }
        var series: [Day] = []
        var totals = Day(date: "\(from)/\(to)")
        var date = start
        while date <= end {
            let key = Self.format(date)
            let day = days[key] ?? Day(date: key)
            series.append(day)
            totals.answered += day.answered
            totals.passed += day.passed
            totals.byRule.merge(day.byRule, uniquingKeysWith: +)
            totals.byOutcome.merge(day.byOutcome, uniquingKeysWith: +)
            date = date.addingTimeInterval(86400)
        }
        return Report(from: from, to: to, days: series, totals: totals)
    }

    static func midnight(_ text: String) -> Date? {
        guard text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) != nil else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = beijing
        let parts = text.split(separator: "-").compactMap { Int($0) }
        let components = DateComponents(year: parts[0], month: parts[1], day: parts[2])
        guard let day = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: day) == components
        else { return nil }
        return day
    }

    static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = beijing
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }
}
