import Foundation

/// What every appointment event says about the appointment: enough for screening to open a questionnaire window,
/// for consult to open an online visit, for the HIS to register the visit. No name, no identity number.
public struct AppointmentFacts: Codable, Sendable, Equatable {
    public var appointmentID: String
    public var patientID: String
    /// The account that booked (and that screening and consult write to).
    public var accountID: String
    public var doctorID: String
    public var departmentID: String
    public var sessionID: String
    /// `outpatient` (at the hospital) or `online` (a consultation in the app).
    public var visitType: String
    /// When the visit may start and must end: the slot's time for timed slots, the session's for numbered places.
    public var visitStart: Date
    public var visitEnd: Date
    /// The visit number (就诊序号) within the session.
    public var visitNumber: Int
    /// The fee in fen (分).
    public var feeFen: Int
    /// Where it was booked: `app`, `web` or `window`.
    public var channel: String

    public init(
        appointmentID: String, patientID: String, accountID: String, doctorID: String, departmentID: String,
        sessionID: String, visitType: String, visitStart: Date, visitEnd: Date, visitNumber: Int, feeFen: Int,
        channel: String
    ) {
        self.appointmentID = appointmentID
        self.patientID = patientID
        self.accountID = accountID
        self.doctorID = doctorID
        self.departmentID = departmentID
        self.sessionID = sessionID
        self.visitType = visitType
        self.visitStart = visitStart
        self.visitEnd = visitEnd
        self.visitNumber = visitNumber
        self.feeFen = feeFen
        self.channel = channel
    }
}

/// A patient took a place: it is held for them until they pay or the hold expires.
public struct AppointmentBooked: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-booked.v1"
    public var appointment: AppointmentFacts
    public var holdExpiresAt: Date
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts, holdExpiresAt: Date) {
        self.appointment = appointment
        self.holdExpiresAt = holdExpiresAt
    }
}

/// The fee was paid: the appointment stands. Screening opens its questionnaire from this one.
public struct AppointmentConfirmed: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-confirmed.v1"
    public var appointment: AppointmentFacts
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts) { self.appointment = appointment }
}

/// The appointment no longer stands: the patient cancelled, the hold expired unpaid, or the session was stopped.
public struct AppointmentCancelled: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-cancelled.v1"
    public var appointment: AppointmentFacts
    /// `patient`, `hold-expired` or `session-stopped`.
    public var reason: String
    /// What the hospital wrote when it stopped the session, or the patient's words; may be empty.
    public var note: String
    /// What is refunded, in fen (0 when nothing was paid).
    public var refundFen: Int
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts, reason: String, note: String, refundFen: Int) {
        self.appointment = appointment
        self.reason = reason
        self.note = note
        self.refundFen = refundFen
    }
}

/// The patient checked in (签到) on the day.
public struct AppointmentCheckedIn: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-checked-in.v1"
    public var appointment: AppointmentFacts
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts) { self.appointment = appointment }
}

/// The doctor saw the patient.
public struct AppointmentCompleted: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-completed.v1"
    public var appointment: AppointmentFacts
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts) { self.appointment = appointment }
}

/// The session ended without the patient checking in.
public struct AppointmentNoShow: IntegrationEvent, Equatable {
    public static let eventType = "registration.appointment-no-show.v1"
    public var appointment: AppointmentFacts
    public var subject: String { appointment.appointmentID }

    public init(appointment: AppointmentFacts) { self.appointment = appointment }
}

/// The hospital stopped a session (停诊); each of its appointments is cancelled with its own event.
public struct SessionStopped: IntegrationEvent, Equatable {
    public static let eventType = "registration.session-stopped.v1"
    public var sessionID: String
    public var doctorID: String
    public var departmentID: String
    /// `YYYY-MM-DD`, the hospital's local date.
    public var date: String
    /// `morning`, `afternoon` or `evening`.
    public var period: String
    public var visitType: String
    public var reason: String
    public var cancelledAppointments: Int
    public var subject: String { sessionID }

    public init(
        sessionID: String, doctorID: String, departmentID: String, date: String, period: String, visitType: String,
        reason: String, cancelledAppointments: Int
    ) {
        self.sessionID = sessionID
        self.doctorID = doctorID
        self.departmentID = departmentID
        self.date = date
        self.period = period
        self.visitType = visitType
        self.reason = reason
        self.cancelledAppointments = cancelledAppointments
    }
}

/// The payment gateway told us an order was paid.
public struct PaymentSucceeded: IntegrationEvent, Equatable {
    public static let eventType = "registration.payment-succeeded.v1"
    public var orderID: String
    public var appointmentID: String
    public var amountFen: Int
    public var gateway: String
    public var transactionID: String
    public var paidAt: Date
    public var subject: String { orderID }

    public init(
        orderID: String, appointmentID: String, amountFen: Int, gateway: String, transactionID: String, paidAt: Date
    ) {
        self.orderID = orderID
        self.appointmentID = appointmentID
        self.amountFen = amountFen
        self.gateway = gateway
        self.transactionID = transactionID
        self.paidAt = paidAt
    }
}

/// The payment gateway told us a refund reached the patient.
public struct PaymentRefunded: IntegrationEvent, Equatable {
    public static let eventType = "registration.payment-refunded.v1"
    public var orderID: String
    public var appointmentID: String
    public var amountFen: Int
    public var refundID: String
    public var refundedAt: Date
    public var subject: String { orderID }

    public init(orderID: String, appointmentID: String, amountFen: Int, refundID: String, refundedAt: Date) {
        self.orderID = orderID
        self.appointmentID = appointmentID
        self.amountFen = amountFen
        self.refundID = refundID
        self.refundedAt = refundedAt
    }
}
