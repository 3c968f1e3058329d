import Foundation

/// The hospital's day: local dates and the three sessions of a day (上午, 下午, 晚上). China has one time zone,
/// UTC+8, without daylight saving, so a fixed offset is exact. Every service and the operator's tool count days
/// with it: booking windows, sessions, statistics, the seeds' weekly schedules.
public struct HospitalCalendar: Sendable {
    public enum Period: String, Codable, Sendable, CaseIterable {
        case morning, afternoon, evening

        /// Start and end, as minutes after local midnight.
        public var minutes: (start: Int, end: Int) {
            switch self {
            case .morning: (8 * 60, 12 * 60)
            case .afternoon: (13 * 60 + 30, 17 * 60 + 30)
            case .evening: (18 * 60, 21 * 60)
            }
        }

        public var chinese: String {
            switch self {
            case .morning: "上午"
            case .afternoon: "下午"
            case .evening: "晚上"
            }
        }
    }

    public static let utcOffset = 8 * 3600
    public static let shared = HospitalCalendar()
    /// The SQLite date modifier that turns a stored UTC time into the hospital's: `date(column, '+8 hours')`.
    public static let sqliteModifier = "'+\(utcOffset / 3600) hours'"

    public init() {}

    private let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: HospitalCalendar.utcOffset)!
        return calendar
    }()

    /// Local midnight of `date` (`YYYY-MM-DD`), or nil when it is not a real date.
    public func midnight(of date: String) -> Date? {
        guard date.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) != nil else { return nil }
        let parts = date.split(separator: "-").compactMap { Int($0) }
        let components = DateComponents(year: parts[0], month: parts[1], day: parts[2])
        guard let day = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: day) == components
        else { return nil }
        return day
    }

    /// The local date of `instant`, `YYYY-MM-DD`.
    public func date(of instant: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// `date` moved by `days`.
    public func date(_ date: String, plusDays days: Int) -> String? {
        guard let midnight = midnight(of: date) else { return nil }
        return self.date(of: calendar.date(byAdding: .day, value: days, to: midnight)!)
    }

    /// The instant `minutes` after local midnight of `date`.
    public func instant(_ date: String, minutes: Int) -> Date? {
        midnight(of: date).map { $0.addingTimeInterval(TimeInterval(minutes * 60)) }
    }

    /// When a session of `period` on `date` starts and ends.
    public func interval(_ date: String, _ period: Period) -> (start: Date, end: Date)? {
        guard let start = instant(date, minutes: period.minutes.start),
            let end = instant(date, minutes: period.minutes.end)
        else { return nil }
        return (start, end)
    }

    /// `HH:MM` local time of `instant`.
    public func clock(of instant: Date) -> String {
        let parts = calendar.dateComponents([.hour, .minute], from: instant)
        return String(format: "%02d:%02d", parts.hour!, parts.minute!)
    }

    /// The weekday of `date`, 1 = Monday … 7 = Sunday, as Chinese calendars count it.
    public func weekday(of date: String) -> Int? {
        midnight(of: date).map { (calendar.component(.weekday, from: $0) + 5) % 7 + 1 }
    }
}
