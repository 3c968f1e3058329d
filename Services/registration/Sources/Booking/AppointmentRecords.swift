import Foundation
import GRDB
import Hummingbird
import YunzhenContracts

/// An appointment as clients see it, and as events describe it: one query joins the appointment to its slot,
/// session, doctor, department and payment order.
struct AppointmentView: ResponseEncodable, Equatable, Sendable {
    struct Payment: Codable, Equatable, Sendable {
        var orderId: String
        var amountFen: Int
        /// created, paid, closed, refund-pending, refunded
        var status: String
    }
    var id: String
    var patientId: String
    var patientName: String
    var doctorId: String
    var doctorName: String
    var departmentId: String
    var departmentName: String
    var sessionId: String
    var date: String
    var period: String
    var visitType: String
    var visitNumber: Int
    var visitStart: Date
    var visitEnd: Date
    var feeFen: Int
    /// pending-payment, confirmed, checked-in, completed, no-show, cancelled
    var status: String
    var holdExpiresAt: Date?
    var channel: String
    var bookedAt: Date
    var cancelReason: String?
    var payment: Payment?
}

enum AppointmentRecords {
    /// Statuses in which an appointment holds its place and counts as the patient's booking of the session.
    static let standing = ["pending-payment", "confirmed", "checked-in"]

    /// SQL true when a `slot` (joined to the `appointment` holding it) is free at `:now`: nobody holds it, or its
    /// holder's time to pay is up (the next booking expires that hold in its own transaction).
    static let slotIsFree = """
        (slot.appointment_id IS NULL
            OR (appointment.status = 'pending-payment' AND appointment.hold_expires_at <= :now))
        """

    static let select = """
        SELECT appointment.*, slot.starts_at AS visit_start, slot.ends_at AS visit_end,
            session.doctor_id, session.department_id, session.date, session.period, session.visit_type,
            session.ends_at AS session_end, doctor.name AS doctor_name, doctor.staff_id AS doctor_staff_id,
            department.name AS department_name, patient.name AS patient_name,
            payment_order.id AS order_id, payment_order.amount_fen AS order_amount, payment_order.status AS order_status
        FROM appointment
        JOIN slot ON slot.id = appointment.slot_id
        JOIN session ON session.id = appointment.session_id
        JOIN doctor ON doctor.id = session.doctor_id
        JOIN department ON department.id = session.department_id
        JOIN patient ON patient.id = appointment.patient_id
        LEFT JOIN payment_order ON payment_order.appointment_id = appointment.id
        """

    static func row(_ id: String, in db: Database) throws -> Row? {
        try Row.fetchOne(db, sql: select + " WHERE appointment.id = ?", arguments: [id])
    }

    static func view(_ row: Row) -> AppointmentView {
        let status: String = row["status"]
        var payment: AppointmentView.Payment?
        if let order = row["order_id"] as String? {
            payment = .init(orderId: order, amountFen: row["order_amount"], status: row["order_status"])
        }
        return AppointmentView(
            id: row["id"], patientId: row["patient_id"], patientName: row["patient_name"], doctorId: row["doctor_id"],
            doctorName: row["doctor_name"], departmentId: row["department_id"],
            departmentName: row["department_name"], sessionId: row["session_id"], date: row["date"],
            period: row["period"], visitType: row["visit_type"], visitNumber: row["visit_number"],
            visitStart: row["visit_start"], visitEnd: row["visit_end"], feeFen: row["fee_fen"], status: status,
            holdExpiresAt: status == "pending-payment" ? row["hold_expires_at"] : nil, channel: row["channel"],
            bookedAt: row["booked_at"], cancelReason: row["cancel_reason"], payment: payment)
    }

    static func facts(_ row: Row) -> AppointmentFacts {
        AppointmentFacts(
            appointmentID: row["id"], patientID: row["patient_id"], accountID: row["account_id"],
            doctorID: row["doctor_id"], departmentID: row["department_id"], sessionID: row["session_id"],
            visitType: row["visit_type"], visitStart: row["visit_start"], visitEnd: row["visit_end"],
            visitNumber: row["visit_number"], feeFen: row["fee_fen"], channel: row["channel"])
    }
}
