import Foundation
import YunzhenContracts
import YunzhenServiceKit

/// The hospital's booking rules, from configuration.
public struct BookingPolicy: Sendable, Equatable {
    /// How long a place is held for payment (`YUNZHEN_BOOKING_HOLD_MINUTES`, default 15).
    public var hold: TimeInterval = 15 * 60
    /// How many days ahead booking opens (`YUNZHEN_BOOKING_DAYS_AHEAD`, default 7): the sessions of day D open
    /// `daysAhead` days before D …
    public var daysAhead = 7
    /// … at this local time, minutes after midnight (`YUNZHEN_BOOKING_OPENS_AT`, `HH:MM`, default 08:00), as
    /// hospitals release their numbers (放号) at a set hour.
    public var opensAtMinutes = 8 * 60
    /// A patient may cancel (with a full refund) until this long before the visit starts
    /// (`YUNZHEN_BOOKING_CANCEL_CUTOFF_MINUTES`, default 120).
    public var cancelCutoff: TimeInterval = 120 * 60
    /// How many unpaid holds one account may have at once (`YUNZHEN_BOOKING_MAX_HOLDS`, default 3): without a
    /// limit, one account could hold the places of every session without paying for any.
    public var maximumHolds = 3
    /// How late a payment or refund notification may be before the gateway is asked about the order
    /// (`YUNZHEN_PAYMENT_RECONCILE_AFTER_SECONDS`, default 60).
    public var reconcileAfter: TimeInterval = 60

    public init() {}

    public init(hold: TimeInterval, daysAhead: Int, opensAtMinutes: Int, cancelCutoff: TimeInterval) {
        self.hold = hold
        self.daysAhead = daysAhead
        self.opensAtMinutes = opensAtMinutes
        self.cancelCutoff = cancelCutoff
    }

    static func read(from environment: EnvironmentReader) throws(ConfigurationError) -> BookingPolicy {
        var policy = BookingPolicy()
        policy.hold = TimeInterval(
            try environment.integer("YUNZHEN_BOOKING_HOLD_MINUTES", default: 15, in: 1...1440) * 60)
        policy.daysAhead = try environment.integer("YUNZHEN_BOOKING_DAYS_AHEAD", default: 7, in: 0...90)
        policy.cancelCutoff = TimeInterval(
            try environment.integer("YUNZHEN_BOOKING_CANCEL_CUTOFF_MINUTES", default: 120, in: 0...(7 * 1440)) * 60)
        policy.maximumHolds = try environment.integer("YUNZHEN_BOOKING_MAX_HOLDS", default: 3, in: 1...100_000)
        policy.reconcileAfter = TimeInterval(
            try environment.integer("YUNZHEN_PAYMENT_RECONCILE_AFTER_SECONDS", default: 60, in: 1...86_400))
        if let text = environment.optionalString("YUNZHEN_BOOKING_OPENS_AT") {
            let parts = text.split(separator: ":").compactMap { Int($0) }
            guard text.wholeMatch(of: /[0-9]{2}:[0-9]{2}/) != nil, parts[0] < 24, parts[1] < 60 else {
                throw ConfigurationError(
                    variable: "YUNZHEN_BOOKING_OPENS_AT", problem: "must be a time HH:MM, e.g. 08:00")
            }
            policy.opensAtMinutes = parts[0] * 60 + parts[1]
        }
        return policy
    }

    /// When booking opens for the sessions of `date`.
    func opening(of date: String, calendar: HospitalCalendar) -> Date? {
        calendar.date(date, plusDays: -daysAhead).flatMap { calendar.instant($0, minutes: opensAtMinutes) }
    }
}
