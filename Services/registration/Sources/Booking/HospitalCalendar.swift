import Foundation

/// The hospital's day: local dates and the three sessions of a day (上午, 下午, 晚上). China has one time zone,
/// UTC+8, without daylight saving, so a fixed offset is exact.
struct HospitalCalendar: Sendable {
    enum Period: String, Codable, Sendable, CaseIterable {
        case morning, afternoon, evening

        /// Start and end, as minutes after local midnight.
        var minutes: (start: Int, end: Int) {
            switch self {
            case .morning: (8 * 60, 12 * 60)
            case .afternoon: (13 * 60 + 30, 17 * 60 + 30)
            case .evening: (18 * 60, 21 * 60)
            }
        }

        var chinese: String {
            switch self {
            case .morning: "上午"
            case .afternoon: "下午"
            case .evening: "晚上"
            }
        }
    }

    static let utcOffset = 8 * 3600
    static let shared = HospitalCalendar()

    private let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: HospitalCalendar.utcOffset)!
        return calendar
    }()

    /// Local midnight of `date` (`YYYY-MM-DD`), or nil when it is not a real date.
    func midnight(of date: String) -> Date? {
        guard date.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) != nil else { return nil }
        let parts = date.split(separator: "-").compactMap { Int($0) }
        let components = DateComponents(year: parts[0], month: parts[1], day: parts[2])
        guard let day = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: day) == components
        else { return nil }
        return day
    }

    /// The local date of `instant`, `YYYY-MM-DD`.
    func date(of instant: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// `date` moved by `days`.
    func date(_ date: String, plusDays days: Int) -> String? {
        guard let midnight = midnight(of: date) else { return nil }
        return self.date(of: calendar.date(byAdding: .day, value: days, to: midnight)!)
    }

    /// The instant `minutes` after local midnight of `date`.
    func instant(_ date: String, minutes: Int) -> Date? {
        midnight(of: date).map { $0.addingTimeInterval(TimeInterval(minutes * 60)) }
    }

    /// When a session of `period` on `date` starts and ends.
    func interval(_ date: String, _ period: Period) -> (start: Date, end: Date)? {
        guard let start = instant(date, minutes: period.minutes.start),
            let end = instant(date, minutes: period.minutes.end)
        else { return nil }
        return (start, end)
    }

    /// `HH:MM` local time of `instant`.
    func clock(of instant: Date) -> String {
        let parts = calendar.dateComponents([.hour, .minute], from: instant)
        return String(format: "%02d:%02d", parts.hour!, parts.minute!)
    }
}
