import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit
import YunzhenStorage

@testable import ScreeningService

/// Screening's router on an in-memory SQLite database with its own clock, fed registration's events as the
/// queue consumer would feed them, and called as each kind of user.
struct ScreeningFixture: Sendable {
    let database: ServiceDatabase
    let clock: TestClock
    let client: any TestClientProtocol
    /// Thirty hours from the start of the test: the screening opens six hours from now.
    static let visitStart = Date().addingTimeInterval(30 * 3600)

    static func run(singleEntry: Bool = true, _ body: @Sendable (ScreeningFixture) async throws -> Void)
        async throws
    {
        let database = try ServiceDatabase.inMemory(migrator: ScreeningMigrations.migrator)
        let clock = TestClock(Date())
        let router = buildRouter(
            database: database, verifier: await TestIdentity.verifier(), singleEntry: singleEntry,
            clock: { clock.now })
        let app = ServiceApplication.make(
            name: "screening", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        try await app.test(.router) { client in
            try await body(ScreeningFixture(database: database, clock: clock, client: client))
        }
    }

    // MARK: Registration's events

    func deliver(_ event: some IntegrationEvent) async throws {
        let bytes = try EventCoding.encoder.encode(CloudEvent(source: "/yunzhen/registration", event: event))
        let consumed = try ConsumedEvent(topic: "registration", offset: 0, bytes: Array(bytes))
        let screenings = Screenings(database: database.writer, opensBefore: 24 * 3600)
        try await database.writer.write { db in try screenings.handle(consumed, in: db) }
    }

    static func appointment(_ id: String, patient: String, account: String) -> AppointmentFacts {
        AppointmentFacts(
            appointmentID: id, patientID: patient, accountID: account, doctorID: "wang-jian",
            departmentID: "hematology", sessionID: "ses_1", visitType: "outpatient", visitStart: visitStart,
            visitEnd: visitStart.addingTimeInterval(4 * 3600), visitNumber: 1, feeFen: 5000, channel: "app")
    }

    /// Registration's word that `account` manages `patient`, born in `birthYear`.
    func register(_ patient: String, account: String, birthYear: Int = 1980, sex: String = "female") async throws {
        try await deliver(
            PatientRegistered(
                patientID: patient, accountID: account, relationship: "self", province: "北京", birthYear: birthYear,
                sex: sex))
    }

    /// The patient registered under `account`, an appointment of theirs confirmed; its screening's id.
    func confirmedAppointment(_ id: String, patient: String, account: String) async throws -> String {
        try await register(patient, account: account)
        try await deliver(AppointmentConfirmed(appointment: Self.appointment(id, patient: patient, account: account)))
        return try await database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT id FROM screening WHERE appointment_id = ?", arguments: [id])!
        }
    }

    /// The seeded questionnaire published, the clock moved into the window, `answers` submitted.
    func answer(_ screening: String, as account: String, _ answers: [String: Questionnaire.AnswerValue])
        async throws -> (HTTPResponse.Status, [String: Any])
    {
        let seed = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(QuestionnaireRulesTests.seeded))
        let published = try await send(.post, "/admin/questionnaires", try await headers("staff_admin", .admin), seed)
        #expect(published.0 == .created || published.1["code"] as? String == "questionnaire-unchanged")
        if clock.now < Self.visitStart.addingTimeInterval(-23 * 3600) {
            clock.set(Self.visitStart.addingTimeInterval(-2 * 3600))
        }
        return try await send(
            .post, "/screenings/\(screening)/answers", try await headers(account, .patient),
            ["version": 1, "answers": try JSONSerialization.jsonObject(with: try JSONEncoder().encode(answers))])
    }

    /// A confirmed appointment whose screening the patient passed: the screening's id and its pass's token.
    func passedScreening(_ appointment: String, patient: String, account: String) async throws -> (String, String) {
        let screening = try await confirmedAppointment(appointment, patient: patient, account: account)
        #expect(try await answer(screening, as: account, QuestionnaireRulesTests.healthy).0 == .ok)
        let pass = try await send(.get, "/screenings/\(screening)/pass", try await headers(account, .patient))
        return (screening, try #require(pass.1["token"] as? String))
    }

    // MARK: Requests

    func headers(_ subject: String, _ role: Role) async throws -> HTTPFields {
        let kind: Principal.Kind = role == .patient ? .patient : .staff
        return [
            .authorization: "Bearer \(try await TestIdentity.token(subject, kind: kind, roles: [role]))",
            .contentType: "application/json",
        ]
    }

    func send(_ method: HTTPRequest.Method, _ path: String, _ headers: HTTPFields = [:], _ body: Any? = nil)
        async throws -> (HTTPResponse.Status, [String: Any])
    {
        let response = try await client.execute(
            uri: path, method: method, headers: headers,
            body: try body.map { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: $0)) })
        return (
            response.status,
            (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]) ?? [:]
        )
    }

    static func date(_ value: Any?) -> Date? {
        guard let text = value as? String else { return nil }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions.insert(.withFractionalSeconds)
        return formatter.date(from: text)
    }
}
