import Foundation
import YunzhenContracts

/// The Beijing dates a statistics report covers, as an admin page asks for them: `from` and `to` (YYYY-MM-DD),
/// by default the 30 days up to today, at most a year; and the report's series over them, every date included so
/// that a chart's axis is continuous.
public struct StatisticsRange: Sendable, Equatable {
    public let from: String
    public let to: String
    static let calendar = HospitalCalendar.shared

    /// The query's `from` and `to`, or the defaults; 400 `invalid-query` saying which one is wrong.
    public init(from: String?, to: String?, now: Date) throws(Problem) {
        let to = to ?? Self.calendar.date(of: now)
        let from = from ?? Self.calendar.date(to, plusDays: -29) ?? to
        guard let start = Self.calendar.midnight(of: from) else {
            throw Problem(.badRequest, code: "invalid-query", detail: "`from` must be a date YYYY-MM-DD.")
        }
        guard let end = Self.calendar.midnight(of: to), end >= start, end.timeIntervalSince(start) <= 366 * 86400
        else {
            throw Problem(
                .badRequest, code: "invalid-query",
                detail: "`to` must be a date YYYY-MM-DD from `from` to a year after.")
        }
        self.from = from
        self.to = to
    }

    /// One entry per date of the range (`empty(date)` where `days` has none), and their sum, dated `from/to`.
    public func series<Day>(
        _ days: [String: Day], empty: (String) -> Day, adding add: (inout Day, Day) -> Void
    ) -> (days: [Day], totals: Day) {
        var series: [Day] = []
        var totals = empty("\(from)/\(to)")
        var date = from
        while date <= to {
            let day = days[date] ?? empty(date)
            series.append(day)
            add(&totals, day)
            guard let next = Self.calendar.date(date, plusDays: 1) else { break }
            date = next
        }
        return (series, totals)
    }
}
