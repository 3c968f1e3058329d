import Foundation
import GRDB
import Hummingbird
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// Booking (预约挂号) and an appointment's life: a place is held for payment, confirmed when paid, cancelled (with a
/// full refund) until the cut-off, checked in (签到) on the day, completed or a no-show; a hold that is not paid in
/// time expires and frees its place.
///
/// Capacity is the database's to enforce: a place is taken by one UPDATE of a free slot row (`appointment_id IS
/// NULL`), and a unique index on `slot.appointment_id` and another on the patient's standing booking per session
/// make a double booking impossible whatever the code above them does.
struct Appointments: Sendable {
    let database: any DatabaseWriter
    let policy: BookingPolicy
    let gateway: String
    let calendar = HospitalCalendar.shared
    static let source = "/yunzhen/registration"

    struct BookingRequest: Decodable, Sendable {
        var sessionId: String
        var patientId: String
        /// A particular place (timed slots); the first free one when absent.
        var slotId: String?
        /// `app` (the default) or `web`.
        var channel: String?
    }

    // MARK: Booking

    /// Holds a place of the session for the patient and opens a payment order for the fee (a free session is
    /// confirmed at once). `work` runs inside the caller's access-checked transaction.
    func book(_ request: BookingRequest, account: String, now: Date, in db: Database) throws -> AppointmentView {
        let channel = request.channel ?? "app"
        guard ["app", "web"].contains(channel) else {
            throw Self.invalid("channel", "must be app or web")
        }
        try expireHolds(now: now, in: db)
        guard
            let session = try Row.fetchOne(
                db, sql: "SELECT * FROM session WHERE id = ?", arguments: [request.sessionId])
        else { throw Problem.notFound("There is no session `\(request.sessionId)`.") }
        guard session["status"] as String == "open" else {
            throw Problem(
                .conflict, code: "session-stopped",
                detail: "This session was stopped (停诊): \(session["stop_reason"] as String? ?? ""). Choose another.")
        }
        let date: String = session["date"]
        guard (session["ends_at"] as Date) > now else {
            throw Problem(.conflict, code: "session-over", detail: "This session is over. Choose a later one.")
        }
        if let opening = policy.opening(of: date, calendar: calendar), now < opening {
            throw Problem(
                .conflict, code: "booking-not-open",
                detail:
                    "Booking for \(date) opens at \(calendar.date(of: opening)) \(calendar.clock(of: opening)) (Beijing time).",
                extensions: ["opensAt": ISO8601DateFormatter().string(from: opening)])
        }
        if try Bool.fetchOne(
            db,
            sql: """
                SELECT EXISTS (SELECT 1 FROM appointment WHERE session_id = ? AND patient_id = ?
                    AND status IN ('pending-payment', 'confirmed', 'checked-in'))
                """,
            arguments: [request.sessionId, request.patientId]) == true
        {
            throw Problem(
                .conflict, code: "already-booked",
                detail: "This patient already has a booking in this session: one per patient per session.")
        }
        let holds =
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM appointment WHERE account_id = ? AND status = 'pending-payment'",
                arguments: [account]) ?? 0
        guard holds < policy.maximumHolds else {
            throw Problem(
                .conflict, code: "too-many-holds",
                detail: "This account already holds \(holds) unpaid places: pay for or cancel one of them first.")
        }
        let id = "apt_" + Secrets.randomHex(bytes: 10)
        // The one statement that takes a place: a free slot (the one asked for, or the first) becomes this
        // appointment's. Two bookings cannot both find the same slot free. (`INDEXED BY`: the planner would
        // otherwise walk every free slot of every session through the unique index on `appointment_id`.)
        guard
            let slot = try Row.fetchOne(
                db,
                sql: """
                    UPDATE slot SET appointment_id = ?1
                    WHERE id = (SELECT id FROM slot INDEXED BY slot_free
                                WHERE session_id = ?2 AND appointment_id IS NULL
                                  AND (?3 IS NULL OR id = ?3)
                                ORDER BY visit_number LIMIT 1)
                      AND appointment_id IS NULL
                    RETURNING id, visit_number
                    """,
                arguments: [id, request.sessionId, request.slotId])
        else {
            if request.slotId != nil {
                throw Problem(
                    .conflict, code: "slot-taken",
                    detail: "That time is taken or is not a place of this session. Choose another.")
            }
            throw Problem(
                .conflict, code: "no-places-left", detail: "No places left in this session. Choose another session.")
        }
        let fee: Int = session["fee_fen"]
        let holdExpiresAt = now.addingTimeInterval(policy.hold)
        try db.execute(
            sql: """
                INSERT INTO appointment (id, session_id, slot_id, patient_id, account_id, channel, status,
                    visit_number, fee_fen, hold_expires_at, booked_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending-payment', ?, ?, ?, ?)
                """,
            arguments: [
                id, request.sessionId, slot["id"] as String, request.patientId, account, channel,
                slot["visit_number"] as Int, fee, holdExpiresAt, now,
            ])
        if fee > 0 {
            try db.execute(
                sql: """
                    INSERT INTO payment_order (id, appointment_id, amount_fen, gateway, status, created_at)
                    VALUES (?, ?, ?, ?, 'created', ?)
                    """,
                arguments: ["ord_" + Secrets.randomHex(bytes: 10), id, fee, gateway, now])
        }
        let row = try AppointmentRecords.row(id, in: db)!
        try Outbox.publish(
            AppointmentBooked(appointment: AppointmentRecords.facts(row), holdExpiresAt: holdExpiresAt),
            source: Self.source, in: db)
        if fee == 0 { try confirm(id, now: now, in: db) }
        return AppointmentRecords.view(try AppointmentRecords.row(id, in: db)!)
    }

    /// Marks a held appointment paid (or free) and announces it.
    func confirm(_ id: String, now: Date, in db: Database) throws {
        try db.execute(
            sql:
                "UPDATE appointment SET status = 'confirmed', confirmed_at = ? WHERE id = ? AND status = 'pending-payment'",
            arguments: [now, id])
        guard db.changesCount == 1 else { return }
        try Outbox.publish(
            AppointmentConfirmed(appointment: AppointmentRecords.facts(try AppointmentRecords.row(id, in: db)!)),
            source: Self.source, in: db)
    }

    // MARK: Cancelling

    /// Cancels the patient's appointment until the cut-off; a paid fee is refunded in full.
    func cancelByPatient(_ id: String, note: String?, now: Date, in db: Database) throws -> AppointmentView {
        try expireHolds(now: now, in: db)
        guard let row = try AppointmentRecords.row(id, in: db) else { throw Self.noAppointment(id) }
        guard ["pending-payment", "confirmed"].contains(row["status"] as String) else {
            throw Problem(
                .conflict, code: "not-cancellable",
                detail: "This appointment is \(row["status"] as String) and can no longer be cancelled.")
        }
        let cutoff = (row["visit_start"] as Date).addingTimeInterval(-policy.cancelCutoff)
        guard now < cutoff else {
            throw Problem(
                .conflict, code: "cancellation-closed",
                detail:
                    "Appointments can be cancelled until \(Int(policy.cancelCutoff / 60)) minutes before the visit; ask the clinic."
            )
        }
        try cancel(row, reason: "patient", note: note ?? "", now: now, in: db)
        return AppointmentRecords.view(try AppointmentRecords.row(id, in: db)!)
    }

    /// Ends a standing appointment: its place is freed, an unpaid order closed, a paid one marked for a full refund
    /// (the payment worker asks the gateway), and the cancellation announced.
    func cancel(_ row: Row, reason: String, note: String, now: Date, in db: Database) throws {
        let id: String = row["id"]
        try db.execute(
            sql: """
                UPDATE appointment SET status = 'cancelled', cancelled_at = ?, cancel_reason = ?, cancel_note = ?
                WHERE id = ?
                """,
            arguments: [now, reason, note, id])
        try db.execute(sql: "UPDATE slot SET appointment_id = NULL WHERE appointment_id = ?", arguments: [id])
        var refund = 0
        if let order = row["order_id"] as String? {
            switch row["order_status"] as String {
            case "paid":
                refund = row["order_amount"]
                try db.execute(
                    sql: """
                        UPDATE payment_order SET status = 'refund-pending', refund_id = ?, refund_requested_at = ?
                        WHERE id = ?
                        """,
                    arguments: ["rfd_" + Secrets.randomHex(bytes: 10), now, order])
            case "created":
                // Closed here; the payment worker also closes it at the gateway, so a late payment is refused there
                // (and refunded here if it still arrives).
                try db.execute(sql: "UPDATE payment_order SET status = 'closed' WHERE id = ?", arguments: [order])
            default: break
            }
        }
        try Outbox.publish(
            AppointmentCancelled(
                appointment: AppointmentRecords.facts(row), reason: reason, note: note, refundFen: refund),
            source: Self.source, in: db)
    }

    /// Cancels every hold whose time is up. Runs at the start of each booking transaction (so a place whose hold
    /// just expired is free to the next patient at once) and from the booking worker.
    @discardableResult
    func expireHolds(now: Date, in db: Database) throws -> Int {
        let expired = try Row.fetchAll(
            db,
            sql: AppointmentRecords.select
                + " WHERE appointment.status = 'pending-payment' AND appointment.hold_expires_at <= ?",
            arguments: [now])
        for row in expired { try cancel(row, reason: "hold-expired", note: "", now: now, in: db) }
        return expired.count
    }

    // MARK: The day of the visit

    /// The patient checks in (签到) on the day of the visit, before it ends.
    func checkIn(_ id: String, now: Date, in db: Database) throws -> AppointmentView {
        guard let row = try AppointmentRecords.row(id, in: db) else { throw Self.noAppointment(id) }
        guard row["status"] as String == "confirmed" else {
            throw Problem(
                .conflict, code: "not-checkable",
                detail: "Only a paid appointment can be checked in; this one is \(row["status"] as String).")
        }
        guard calendar.date(of: now) == row["date"] as String, now < row["visit_end"] as Date else {
            throw Problem(
                .conflict, code: "not-the-day",
                detail: "Check in on the day of the visit (\(row["date"] as String)), before it ends.")
        }
        try db.execute(
            sql: "UPDATE appointment SET status = 'checked-in', checked_in_at = ? WHERE id = ?", arguments: [now, id])
        try Outbox.publish(
            AppointmentCheckedIn(appointment: AppointmentRecords.facts(row)), source: Self.source, in: db)
        return AppointmentRecords.view(try AppointmentRecords.row(id, in: db)!)
    }

    /// The doctor has seen the patient.
    func complete(_ id: String, now: Date, in db: Database) throws -> AppointmentView {
        guard let row = try AppointmentRecords.row(id, in: db) else { throw Self.noAppointment(id) }
        guard ["confirmed", "checked-in"].contains(row["status"] as String) else {
            throw Problem(
                .conflict, code: "not-completable",
                detail:
                    "Only a confirmed or checked-in appointment can be completed; this one is \(row["status"] as String)."
            )
        }
        try db.execute(
            sql: "UPDATE appointment SET status = 'completed', finished_at = ? WHERE id = ?", arguments: [now, id])
        try Outbox.publish(
            AppointmentCompleted(appointment: AppointmentRecords.facts(row)), source: Self.source, in: db)
        return AppointmentRecords.view(try AppointmentRecords.row(id, in: db)!)
    }

    /// Confirmed appointments whose session ended without a check-in become no-shows.
    @discardableResult
    func markNoShows(now: Date, in db: Database) throws -> Int {
        let missed = try Row.fetchAll(
            db,
            sql: AppointmentRecords.select + " WHERE appointment.status = 'confirmed' AND session.ends_at <= ?",
            arguments: [now])
        for row in missed {
            try db.execute(
                sql: "UPDATE appointment SET status = 'no-show', finished_at = ? WHERE id = ?",
                arguments: [now, row["id"] as String])
            try Outbox.publish(
                AppointmentNoShow(appointment: AppointmentRecords.facts(row)), source: Self.source, in: db)
        }
        return missed.count
    }

    // MARK: Reading

    func list(account: String, in db: Database) throws -> [AppointmentView] {
        try Row.fetchAll(
            db, sql: AppointmentRecords.select + " WHERE appointment.account_id = ? ORDER BY slot.starts_at DESC",
            arguments: [account]
        ).map(AppointmentRecords.view)
    }

    static func noAppointment(_ id: String) -> Problem { Problem.notFound("There is no appointment `\(id)`.") }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-booking", detail: "`\(field)` \(message).",
            extensions: ["field": field])
    }
}
