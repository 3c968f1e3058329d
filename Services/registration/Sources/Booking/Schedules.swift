import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// Doctors' sessions (出诊): published by schedulers of the doctor's department (or admins), each a morning,
/// afternoon or evening of one visit type with numbered places or timed slots; stopping one (停诊) cancels its
/// bookings with full refunds.
struct Schedules: Sendable {
    let database: any DatabaseWriter
    let appointments: Appointments
    let calendar = HospitalCalendar.shared

    struct SessionInput: Decodable, Sendable {
        var doctorId: String
        var date: String
        var period: String
        var visitType: String
        /// The fee in fen; the doctor's fee for the visit type when absent.
        var feeFen: Int?
        /// Numbered places without times (1 to 200) …
        var places: Int?
        /// … or timed slots of this many minutes across the period (5 to 120).
        var slotMinutes: Int?
    }

    struct SlotView: Codable, Equatable, Sendable {
        var id: String
        var visitNumber: Int
        var startsAt: Date
        var endsAt: Date
        var free: Bool
    }

    struct SessionView: ResponseEncodable, Equatable, Sendable {
        var id: String
        var doctorId: String
        var doctorName: String
        var departmentId: String
        var date: String
        var period: String
        var periodName: String
        var startsAt: Date
        var endsAt: Date
        var visitType: String
        var feeFen: Int
        var capacityMode: String
        var capacity: Int
        var placesLeft: Int
        /// open or stopped
        var status: String
        var stopReason: String?
        /// Only for timed sessions, on the session's own page.
        var slots: [SlotView]?
    }

    // MARK: Publishing

    func publish(_ input: SessionInput, by principal: Principal, audit: RequestAudit, now: Date) async throws
        -> SessionView
    {
        guard let period = HospitalCalendar.Period(rawValue: input.period) else {
            throw Self.invalid("period", "must be morning, afternoon or evening")
        }
        guard let visitType = DoctorCatalogue.VisitType(rawValue: input.visitType) else {
            throw Self.invalid("visitType", "must be outpatient or online")
        }
        guard let (start, end) = calendar.interval(input.date, period) else {
            throw Self.invalid("date", "must be a date YYYY-MM-DD")
        }
        guard end > now else { throw Self.invalid("date", "is in the past") }
        let slots: [(start: Date, end: Date)]
        switch (input.places, input.slotMinutes) {
        case (let places?, nil):
            guard (1...200).contains(places) else { throw Self.invalid("places", "must be 1 to 200") }
            slots = Array(repeating: (start, end), count: places)
        case (nil, let minutes?):
            guard (5...120).contains(minutes) else { throw Self.invalid("slotMinutes", "must be 5 to 120") }
            slots = stride(from: start, to: end, by: TimeInterval(minutes * 60)).map {
                ($0, min($0.addingTimeInterval(TimeInterval(minutes * 60)), end))
            }
        default:
            throw Self.invalid("places", "give either `places` (numbered places) or `slotMinutes` (timed slots)")
        }
        if let fee = input.feeFen, !(0...1_000_000).contains(fee) {
            throw Self.invalid("feeFen", "must be whole fen from 0 to 1000000")
        }
        let id = "ses_" + Secrets.randomHex(bytes: 8)
        return try await database.write { db in
            guard
                let doctor = try Row.fetchOne(
                    db, sql: "SELECT department_id FROM doctor WHERE id = ?", arguments: [input.doctorId])
            else { throw Self.invalid("doctorId", "names no doctor") }
            let department: String = doctor["department_id"]
            guard principal.has(.admin) || (principal.has(.scheduler) && principal.departments.contains(department))
            else {
                throw Problem(
                    .forbidden, code: "not-your-department",
                    detail: "Only schedulers of \(department) (or admins) publish this doctor's sessions.")
            }
            let fee =
                try input.feeFen
                ?? Int.fetchOne(
                    db, sql: "SELECT fee_fen FROM doctor_fee WHERE doctor_id = ? AND visit_type = ?",
                    arguments: [input.doctorId, visitType.rawValue])
            guard let fee else {
                throw Self.invalid("feeFen", "is needed: the doctor has no \(visitType.rawValue) fee")
            }
            if try Bool.fetchOne(
                db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM session WHERE doctor_id = ? AND date = ? AND period = ?
                        AND visit_type = ?)
                    """,
                arguments: [input.doctorId, input.date, period.rawValue, visitType.rawValue]) == true
            {
                throw Problem(
                    .conflict, code: "session-exists",
                    detail:
                        "This doctor already has a \(visitType.rawValue) session on \(input.date) \(period.chinese).")
            }
            try db.execute(
                sql: """
                    INSERT INTO session (id, doctor_id, department_id, date, period, starts_at, ends_at, visit_type,
                        fee_fen, capacity_mode, status, published_by, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)
                    """,
                arguments: [
                    id, input.doctorId, department, input.date, period.rawValue, start, end, visitType.rawValue, fee,
                    input.places != nil ? "places" : "timed", principal.subject, now,
                ])
            for (index, slot) in slots.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO slot (id, session_id, visit_number, starts_at, ends_at) VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: ["\(id)-\(index + 1)", id, index + 1, slot.start, slot.end])
            }
            try audit.record(.create, "session", id: id, in: db)
            return try Self.view(id, withSlots: true, now: now, in: db)!
        }
    }

    /// Stops a session (停诊): every standing booking is cancelled with a full refund and its own event, then the
    /// stop is announced.
    func stop(_ id: String, reason: String, by principal: Principal, audit: RequestAudit, now: Date) async throws
        -> (SessionView, Int)
    {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (2...200).contains(reason.count) else {
            throw Self.invalid("reason", "must say why, in 2 to 200 characters (patients are told)")
        }
        return try await database.write { db in
            guard let session = try Row.fetchOne(db, sql: "SELECT * FROM session WHERE id = ?", arguments: [id]) else {
                throw Problem.notFound("There is no session `\(id)`.")
            }
            let department: String = session["department_id"]
            guard principal.has(.admin) || (principal.has(.scheduler) && principal.departments.contains(department))
            else {
                throw Problem(
                    .forbidden, code: "not-your-department",
                    detail: "Only schedulers of \(department) (or admins) stop this doctor's sessions.")
            }
            guard session["status"] as String == "open" else {
                throw Problem(.conflict, code: "session-stopped", detail: "This session is already stopped.")
            }
            guard (session["ends_at"] as Date) > now else {
                throw Problem(.conflict, code: "session-over", detail: "This session is over.")
            }
            try db.execute(
                sql: "UPDATE session SET status = 'stopped', stop_reason = ? WHERE id = ?", arguments: [reason, id])
            let standing = try Row.fetchAll(
                db,
                sql: AppointmentRecords.select
                    + " WHERE appointment.session_id = ? AND appointment.status IN ('pending-payment', 'confirmed', 'checked-in')",
                arguments: [id])
            for row in standing {
                try appointments.cancel(row, reason: "session-stopped", note: reason, now: now, in: db)
            }
            try Outbox.publish(
                SessionStopped(
                    sessionID: id, doctorID: session["doctor_id"], departmentID: department, date: session["date"],
                    period: session["period"], visitType: session["visit_type"], reason: reason,
                    cancelledAppointments: standing.count),
                source: Appointments.source, in: db)
            try audit.record(.update, "session-stopped", id: id, in: db)
            return (try Self.view(id, withSlots: false, now: now, in: db)!, standing.count)
        }
    }

    // MARK: Reading

    /// Open and stopped sessions from `from` to `to` (local dates, at most 31 days), of a doctor or a department.
    func list(doctor: String?, department: String?, from: String, to: String, now: Date) async throws
        -> [SessionView]
    {
        guard calendar.midnight(of: from) != nil else { throw Self.query("from", "must be a date YYYY-MM-DD") }
        guard let end = calendar.midnight(of: to), let start = calendar.midnight(of: from), end >= start,
            end.timeIntervalSince(start) <= 31 * 86400
        else { throw Self.query("to", "must be a date YYYY-MM-DD from `from` to 31 days after it") }
        return try await database.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM session WHERE date BETWEEN ?1 AND ?2
                      AND (?3 IS NULL OR doctor_id = ?3) AND (?4 IS NULL OR department_id = ?4)
                    ORDER BY starts_at, doctor_id LIMIT 1000
                    """,
                arguments: [from, to, doctor, department]
            ).compactMap { try Self.view($0, withSlots: false, now: now, in: db) }
        }
    }

    func session(_ id: String, now: Date) async throws -> SessionView {
        guard let view = try await database.read({ db in try Self.view(id, withSlots: true, now: now, in: db) })
        else { throw Problem.notFound("There is no session `\(id)`.") }
        return view
    }

    static func view(_ id: String, withSlots: Bool, now: Date, in db: Database) throws -> SessionView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT session.*, doctor.name AS doctor_name FROM session JOIN doctor ON doctor.id = session.doctor_id
                    WHERE session.id = ?
                    """,
                arguments: [id])
        else { return nil }
        let slots = try Row.fetchAll(
            db,
            sql: """
                SELECT slot.id, slot.visit_number, slot.starts_at, slot.ends_at, \(AppointmentRecords.slotIsFree) AS free
                FROM slot LEFT JOIN appointment ON appointment.id = slot.appointment_id
                WHERE slot.session_id = :session ORDER BY slot.visit_number
                """,
            arguments: ["now": now, "session": id]
        ).map {
            SlotView(
                id: $0["id"], visitNumber: $0["visit_number"], startsAt: $0["starts_at"], endsAt: $0["ends_at"],
                free: $0["free"])
        }
        let status: String = row["status"]
        let period = HospitalCalendar.Period(rawValue: row["period"]) ?? .morning
        let mode: String = row["capacity_mode"]
        return SessionView(
            id: id, doctorId: row["doctor_id"], doctorName: row["doctor_name"], departmentId: row["department_id"],
            date: row["date"], period: period.rawValue, periodName: period.chinese, startsAt: row["starts_at"],
            endsAt: row["ends_at"], visitType: row["visit_type"], feeFen: row["fee_fen"], capacityMode: mode,
            capacity: slots.count, placesLeft: status == "open" ? slots.filter(\.free).count : 0, status: status,
            stopReason: row["stop_reason"], slots: withSlots && mode == "timed" ? slots : nil)
    }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-session", detail: "`\(field)` \(message).",
            extensions: ["field": field])
    }

    static func query(_ field: String, _ message: String) -> Problem {
        Problem(.badRequest, code: "invalid-query", detail: "`\(field)` \(message).", extensions: ["field": field])
    }
}
