import Foundation

/// Screening opened a questionnaire for a confirmed appointment: consult puts it into the patient's inbox.
public struct ScreeningRequested: IntegrationEvent, Equatable {
    public static let eventType = "screening.screening-requested.v1"
    public var screeningID: String
    public var appointmentID: String
    public var patientID: String
    public var accountID: String
    /// When the questionnaire may be answered: from this long before the visit until the visit ends.
    public var opensAt: Date
    public var closesAt: Date
    public var subject: String { screeningID }

    public init(
        screeningID: String, appointmentID: String, patientID: String, accountID: String, opensAt: Date,
        closesAt: Date
    ) {
        self.screeningID = screeningID
        self.appointmentID = appointmentID
        self.patientID = patientID
        self.accountID = accountID
        self.opensAt = opensAt
        self.closesAt = closesAt
    }
}

/// The answers of a screening, evaluated: the patient may enter (`passed`) or is sent elsewhere (`failed`, with
/// the outcome). Both name the questionnaire version and the rule that decided.
public struct ScreeningEvaluated: Codable, Sendable, Equatable {
    public var screeningID: String
    public var appointmentID: String
    public var patientID: String
    public var accountID: String
    public var questionnaireVersion: Int
    public var ruleID: String
    /// `normal-visit`, `fever-clinic`, `nucleic-acid-test` or `do-not-enter`.
    public var outcome: String

    public init(
        screeningID: String, appointmentID: String, patientID: String, accountID: String, questionnaireVersion: Int,
        ruleID: String, outcome: String
    ) {
        self.screeningID = screeningID
        self.appointmentID = appointmentID
        self.patientID = patientID
        self.accountID = accountID
        self.questionnaireVersion = questionnaireVersion
        self.ruleID = ruleID
        self.outcome = outcome
    }
}

public struct ScreeningPassed: IntegrationEvent, Equatable {
    public static let eventType = "screening.screening-passed.v1"
    public var screening: ScreeningEvaluated
    public var subject: String { screening.screeningID }

    public init(screening: ScreeningEvaluated) { self.screening = screening }
}

public struct ScreeningFailed: IntegrationEvent, Equatable {
    public static let eventType = "screening.screening-failed.v1"
    public var screening: ScreeningEvaluated
    public var subject: String { screening.screeningID }

    public init(screening: ScreeningEvaluated) { self.screening = screening }
}

/// A patient asked a free epidemic question (免费疫情咨询): the doctors on duty see it; consult will hold the
/// conversation. Carries the question, since the doctor who takes it answers it.
public struct EpidemicConsultRequested: IntegrationEvent, Equatable {
    public static let eventType = "screening.epidemic-consult-requested.v1"
    public var consultationID: String
    public var patientID: String
    public var accountID: String
    /// `symptoms`, `visiting`, `travel`, `vaccination`, `protection`, `testing` or `other`.
    public var topic: String
    public var question: String
    public var openedAt: Date
    public var subject: String { consultationID }

    public init(
        consultationID: String, patientID: String, accountID: String, topic: String, question: String, openedAt: Date
    ) {
        self.consultationID = consultationID
        self.patientID = patientID
        self.accountID = accountID
        self.topic = topic
        self.question = question
        self.openedAt = openedAt
    }
}
