import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenIdentity
import YunzhenServiceKit

@testable import RegistrationService

/// Who may reach another patient's data: for every endpoint that returns or changes patient data and every role,
/// a patient who is not theirs is refused, and refused exactly as an id that does not exist is, so the answer
/// never reveals that the patient exists. Later issues add their endpoints to `endpoints`.
@Suite struct AccessMatrixTests {
    struct Endpoint: Sendable, CustomStringConvertible {
        var method: HTTPRequest.Method
        /// `{patient}` stands for the patient's id, `{appointment}` for an appointment of theirs (in the path or the
        /// body).
        var path: String
        var body: [String: String]?
        /// False for a staff action (completing a visit): patients are refused it by role, for any id.
        var forPatients = true
        var description: String { "\(method) \(path)" }
    }

    static let endpoints: [Endpoint] = [
        Endpoint(method: .get, path: "/me/patients/{patient}"),
        Endpoint(
            method: .put, path: "/me/patients/{patient}",
            body: ["relationship": "other", "name": "冒名", "sex": "male", "birthDate": "1990-01-01", "province": "北京"]),
        Endpoint(method: .get, path: "/patients/{patient}"),
        Endpoint(method: .post, path: "/appointments", body: ["sessionId": "{session}", "patientId": "{patient}"]),
        Endpoint(method: .get, path: "/appointments/{appointment}"),
        Endpoint(method: .post, path: "/appointments/{appointment}/payment", body: [:]),
        Endpoint(method: .post, path: "/appointments/{appointment}/cancel", body: [:]),
        Endpoint(method: .post, path: "/appointments/{appointment}/check-in", body: [:]),
        Endpoint(method: .post, path: "/appointments/{appointment}/complete", body: [:], forPatients: false),
        Endpoint(method: .get, path: "/fhir/Appointment/{appointment}"),
        Endpoint(method: .get, path: "/fhir/Appointment?patient={patient}"),
    ]

    /// Every kind of caller that is not the patient's own account.
    static let callers: [(name: String, kind: Principal.Kind, roles: Set<Role>)] = [
        ("another patient", .patient, [.patient]),
        ("a doctor without a relationship", .staff, [.doctor]),
        ("a nurse", .staff, [.nurse]),
        ("a pharmacist", .staff, [.pharmacist]),
        ("a scheduler", .staff, [.scheduler]),
        ("a gate keeper", .staff, [.gate]),
        ("an admin", .staff, [.admin]),
        ("an integrator", .integrator, [.integrator]),
    ]

    @Test(arguments: endpoints)
    func anotherPatientsDataIsRefusedAsIfItDidNotExist(endpoint: Endpoint) async throws {
        try await PatientRoutesTests.withRegistration { client, _, headers in
            let created = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try PatientRoutesTests.json([
                    "relationship": "self", "name": "王芳", "residentId": "11010519491231002X",
                ]))
            let patient = try #require(try PatientRoutesTests.body(created)["id"] as? String)
            let (session, appointment) = try await Self.book(patient, client: client, owner: headers["acct_a"]!)
            let issuer = await TokenIssuer(signingKey: TestIdentity.signingKey)
            for caller in Self.callers {
                let subject = caller.kind == .patient ? "acct_b" : "\(caller.kind.rawValue)_9"
                let (token, _) = try await issuer.issue(subject: subject, kind: caller.kind, roles: caller.roles)
                let callerHeaders: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
                var statuses: [HTTPResponse.Status] = []
                var details: [String] = []
                for (patientID, appointmentID) in [
                    (patient, appointment), ("pat_00000000000000000000", "apt_00000000000000000000"),
                ] {
                    func fill(_ text: String) -> String {
                        text.replacingOccurrences(of: "{patient}", with: patientID)
                            .replacingOccurrences(of: "{appointment}", with: appointmentID)
                            .replacingOccurrences(of: "{session}", with: session)
                    }
                    let response = try await client.execute(
                        uri: fill(endpoint.path), method: endpoint.method, headers: callerHeaders,
                        body: try endpoint.body.map { try PatientRoutesTests.json($0.mapValues(fill)) })
                    statuses.append(response.status)
                    let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                    details.append(
                        problem.detail.replacingOccurrences(of: patientID, with: "{patient}")
                            .replacingOccurrences(of: appointmentID, with: "{appointment}"))
                }
                #expect(statuses[0] == statuses[1], "\(caller.name) on \(endpoint): \(statuses)")
                #expect(details[0] == details[1], "\(caller.name) on \(endpoint): \(details)")
                #expect(!(200..<300).contains(statuses[0].code), "\(caller.name) on \(endpoint) got \(statuses[0])")
                if caller.kind == .patient && endpoint.forPatients {
                    #expect(statuses[0] == .notFound, "\(caller.name) on \(endpoint)")
                }
            }
        }
    }

    /// A doctor, a session tomorrow and the patient's booking in it; the session's and the appointment's ids.
    static func book(_ patient: String, client: any TestClientProtocol, owner: HTTPFields) async throws
        -> (String, String)
    {
        let admin: HTTPFields = [
            .authorization: "Bearer \(try await TestIdentity.token("staff_admin", roles: [.admin]))",
            .contentType: "application/json",
        ]
        _ = try await client.execute(
            uri: "/departments/hematology", method: .put, headers: admin,
            body: try PatientRoutesTests.json(["name": "血液科", "nameEn": "Hematology", "description": ""]))
        let doctor = try JSONSerialization.data(withJSONObject: [
            "departmentId": "hematology", "name": "王建", "title": "chief", "specialties": [String](),
            "introduction": "", "fees": ["outpatient": 5000],
        ])
        _ = try await client.execute(
            uri: "/admin/doctors/wang-jian", method: .put, headers: admin, body: ByteBuffer(data: doctor))
        let published = try await client.execute(
            uri: "/sessions", method: .post, headers: admin,
            body: ByteBuffer(
                data: try JSONSerialization.data(withJSONObject: [
                    "doctorId": "wang-jian", "date": BookingFixture.visitDay, "period": "evening",
                    "visitType": "outpatient", "places": 3,
                ])))
        let session = try #require(try PatientRoutesTests.body(published)["id"] as? String)
        let booked = try await client.execute(
            uri: "/appointments", method: .post, headers: owner,
            body: try PatientRoutesTests.json(["sessionId": session, "patientId": patient]))
        let appointment = (try PatientRoutesTests.body(booked)["appointment"] as? [String: Any])?["id"] as? String
        return (session, try #require(appointment))
    }
}
