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
        /// `{patient}` stands for the patient's id.
        var path: String
        var body: [String: String]?
        var description: String { "\(method) \(path)" }
    }

    static let endpoints: [Endpoint] = [
        Endpoint(method: .get, path: "/me/patients/{patient}"),
        Endpoint(
            method: .put, path: "/me/patients/{patient}",
            body: ["relationship": "other", "name": "冒名", "sex": "male", "birthDate": "1990-01-01", "province": "北京"]),
        Endpoint(method: .get, path: "/patients/{patient}"),
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
            let issuer = await TokenIssuer(signingKey: TestIdentity.signingKey)
            for caller in Self.callers {
                let subject = caller.kind == .patient ? "acct_b" : "\(caller.kind.rawValue)_9"
                let (token, _) = try await issuer.issue(subject: subject, kind: caller.kind, roles: caller.roles)
                let callerHeaders: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
                var statuses: [HTTPResponse.Status] = []
                var details: [String] = []
                let absent = "pat_00000000000000000000"
                for id in [patient, absent] {
                    let response = try await client.execute(
                        uri: endpoint.path.replacingOccurrences(of: "{patient}", with: id), method: endpoint.method,
                        headers: callerHeaders, body: try endpoint.body.map(PatientRoutesTests.json))
                    statuses.append(response.status)
                    let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                    details.append(problem.detail.replacingOccurrences(of: id, with: "{patient}"))
                }
                #expect(statuses[0] == statuses[1], "\(caller.name) on \(endpoint): \(statuses)")
                #expect(details[0] == details[1], "\(caller.name) on \(endpoint): \(details)")
                #expect(!(200..<300).contains(statuses[0].code), "\(caller.name) on \(endpoint) got \(statuses[0])")
                if caller.kind == .patient {
                    #expect(statuses[0] == .notFound, "\(caller.name) on \(endpoint)")
                }
            }
        }
    }
}
