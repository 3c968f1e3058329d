import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenServiceKit

/// What booking does for the hospital, day by day (Beijing dates), for an admin page to chart: bookings (paid, or
/// free and confirmed) by department and channel, cancellations, no-shows, unpaid holds that expired, and the share
/// of out-of-province patients among the bookings.
struct BookingStatistics: Sendable {
    let database: any DatabaseWriter
    /// The hospital's own province (`YUNZHEN_HOSPITAL_PROVINCE`, default 北京); everyone else is out of province.
    let province: String
    struct Day: ResponseEncodable, Equatable, Sendable {
        var date: String
        var booked = 0
        var byDepartment: [String: Int] = [:]
        var byChannel: [String: Int] = [:]
        /// Cancelled by the patient or by a stopped session (expired holds are counted apart).
        var cancelled = 0
        var noShows = 0
        var expiredHolds = 0
        /// Bookings whose patient's province is not the hospital's.
        var outOfProvince = 0
        var outOfProvinceShare: Double { booked == 0 ? 0 : Double(outOfProvince) / Double(booked) }

        enum CodingKeys: String, CodingKey {
            case date, booked, byDepartment, byChannel, cancelled, noShows, expiredHolds, outOfProvince
            case outOfProvinceShare
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(date, forKey: .date)
            try container.encode(booked, forKey: .booked)
            try container.encode(byDepartment, forKey: .byDepartment)
            try container.encode(byChannel, forKey: .byChannel)
            try container.encode(cancelled, forKey: .cancelled)
            try container.encode(noShows, forKey: .noShows)
            try container.encode(expiredHolds, forKey: .expiredHolds)
            try container.encode(outOfProvince, forKey: .outOfProvince)
            try container.encode((outOfProvinceShare * 1000).rounded() / 1000, forKey: .outOfProvinceShare)
        }

        mutating func add(_ other: Day) {
            booked += other.booked
            byDepartment.merge(other.byDepartment, uniquingKeysWith: +)
            byChannel.merge(other.byChannel, uniquingKeysWith: +)
            cancelled += other.cancelled
            noShows += other.noShows
            expiredHolds += other.expiredHolds
            outOfProvince += other.outOfProvince
        }
    }

    struct Report: ResponseEncodable, Sendable {
        var from: String
        var to: String
        var hospitalProvince: String
        /// Every date of the range, empty days included, so a chart's axis is continuous.
        var days: [Day]
        var totals: Day
    }

    func report(_ range: StatisticsRange) async throws -> Report {
        // Stored times are UTC; the modifier gives the Beijing date.
        let local = HospitalCalendar.sqliteModifier
        let rows = try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT 'booked' AS kind, date(appointment.confirmed_at, \(local)) AS day,
                        session.department_id AS department, appointment.channel, patient.province
                    FROM appointment JOIN session ON session.id = appointment.session_id
                    JOIN patient ON patient.id = appointment.patient_id
                    WHERE appointment.confirmed_at IS NOT NULL AND day BETWEEN ?1 AND ?2
                    UNION ALL
                    SELECT CASE appointment.cancel_reason WHEN 'hold-expired' THEN 'expired' ELSE 'cancelled' END,
                        date(appointment.cancelled_at, \(local)), NULL, NULL, NULL
                    FROM appointment WHERE appointment.status = 'cancelled'
                      AND date(appointment.cancelled_at, \(local)) BETWEEN ?1 AND ?2
                    UNION ALL
                    SELECT 'no-show', date(appointment.finished_at, \(local)), NULL, NULL, NULL
                    FROM appointment WHERE appointment.status = 'no-show'
                      AND date(appointment.finished_at, \(local)) BETWEEN ?1 AND ?2
                    """,
                arguments: [range.from, range.to])
        }
        var days: [String: Day] = [:]
        for row in rows {
            let date: String = row["day"]
            var day = days[date] ?? Day(date: date)
            switch row["kind"] as String {
            case "booked":
                day.booked += 1
                day.byDepartment[row["department"], default: 0] += 1
                day.byChannel[row["channel"], default: 0] += 1
                if (row["province"] as String) != province { day.outOfProvince += 1 }
            case "cancelled": day.cancelled += 1
            case "expired": day.expiredHolds += 1
            default: day.noShows += 1
            }
            days[date] = day
        }
        let (series, totals) = range.series(days, empty: { Day(date: $0) }, adding: { $0.add($1) })
        return Report(
            from: range.from, to: range.to, hospitalProvince: province, days: series, totals: totals)
    }
}
