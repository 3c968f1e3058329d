/// Every integration event type, in one explicit list (no reflection): tools and consumers look types up here.
public enum EventCatalog {
    public static let all: [any IntegrationEvent.Type] = [
        DepartmentSaved.self,
        PatientRegistered.self,
        AppointmentBooked.self,
        AppointmentConfirmed.self,
        AppointmentCancelled.self,
        AppointmentCheckedIn.self,
        AppointmentCompleted.self,
        AppointmentNoShow.self,
        SessionStopped.self,
        PaymentSucceeded.self,
        PaymentRefunded.self,
        ScreeningRequested.self,
        ScreeningPassed.self,
        ScreeningFailed.self,
        EpidemicConsultRequested.self,
    ]

    public static func isKnown(_ type: String) -> Bool {
        all.contains { $0.eventType == type }
    }
}

/// Registration created a department or changed its fields.
public struct DepartmentSaved: IntegrationEvent, Equatable {
    public static let eventType = "registration.department-saved.v1"
    public var departmentID: DepartmentID
    public var name: String
    public var nameEn: String
    /// True when the department did not exist before.
    public var created: Bool

    public var subject: String { departmentID.rawValue }

    public init(departmentID: DepartmentID, name: String, nameEn: String, created: Bool) {
        self.departmentID = departmentID
        self.name = name
        self.nameEn = nameEn
        self.created = created
    }
}

/// An account holder added a patient profile (themself or a family member). It carries no name and no identity
/// number: what other services need to count and to link, nothing a reader of the queue could misuse.
public struct PatientRegistered: IntegrationEvent, Equatable {
    public static let eventType = "registration.patient-registered.v1"
    public var patientID: String
    /// The account that manages the patient (books for them, reads their reports).
    public var accountID: String
    /// `self`, `spouse`, `child`, `parent`, `sibling` or `other`.
    public var relationship: String
    /// For the out-of-province statistics: the province of the resident ID, or the one given.
    public var province: String
    public var birthYear: Int
    /// `male` or `female`.
    public var sex: String

    public var subject: String { patientID }

    public init(
        patientID: String, accountID: String, relationship: String, province: String, birthYear: Int, sex: String
    ) {
        self.patientID = patientID
        self.accountID = accountID
        self.relationship = relationship
        self.province = province
        self.birthYear = birthYear
        self.sex = sex
    }
}
