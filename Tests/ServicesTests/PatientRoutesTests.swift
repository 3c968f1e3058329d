import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

@testable import RegistrationService

/// Resident ID numbers as GB 11643 defines them.
@Suite struct ResidentIDTests {
    /// `body` (17 digits) with its check character.
    static func make(_ body: String) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(body, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
        return body + String(Array("10X98765432")[sum % 11])
    }

    @Test func theStandardExampleAndWhatItHolds() throws {
        let id = try ResidentID("11010519491231002x")
        #expect(id.value == "11010519491231002X")
        #expect(id.birthDate == "1949-12-31")
        #expect(id.sex == .female)
        #expect(id.province == "北京")
        #expect(id.masked == "1101**********002X")
        #expect(try ResidentID(Self.make("13010219800101123")).sex == .male)
    }

    @Test func eachKindOfWrongNumberIsNamed() {
        #expect(throws: ResidentID.Problem.format) { try ResidentID("1101051949123100") }
        #expect(throws: ResidentID.Problem.format) { try ResidentID("1101051949123100A2") }
        #expect(throws: ResidentID.Problem.checkDigit) { try ResidentID("110105194912310021") }
        #expect(throws: ResidentID.Problem.region) { try ResidentID(Self.make("99010519491231002")) }
        #expect(throws: ResidentID.Problem.birthDate) { try ResidentID(Self.make("11010519490231002")) }
    }
}

/// An account's patients (itself and family members), and what another account sees of them: nothing.
@Suite struct PatientRoutesTests {
    static func withRegistration(
        _ body: @escaping @Sendable (any TestClientProtocol, ServiceDatabase, [String: HTTPFields]) async throws -> Void
    ) async throws {
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        var headers: [String: HTTPFields] = [:]
        let issuer = await TokenIssuer(signingKey: TestIdentity.signingKey)
        for account in ["acct_a", "acct_b"] {
            try await database.writer.write { db in
                try db.execute(
                    sql: "INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)",
                    arguments: [account, account == "acct_a" ? "13800000011" : "13800000022", Date()])
            }
            let (token, _) = try await issuer.issue(subject: account, kind: .patient, roles: [.patient])
            headers[account] = [.authorization: "Bearer \(token)", .contentType: "application/json"]
        }
        let (doctor, _) = try await issuer.issue(subject: "staff_1", kind: .staff, roles: [.doctor])
        headers["doctor"] = [.authorization: "Bearer \(doctor)", .contentType: "application/json"]
        let router = buildRouter(database: database, identity: await TestIdentity.registration())
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        let callers = headers
        try await app.test(.router) { client in try await body(client, database, callers) }
    }

    static func json(_ object: [String: String]) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
    }

    static func body(_ response: TestResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
    }

    static let mother = ResidentIDTests.make("13010219550307402")

    @Test func anAccountAddsItselfAndItsFamilyAndSeesThemMaskedInTheList() async throws {
        try await Self.withRegistration { client, database, headers in
            let own = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json(["relationship": "self", "name": "王芳", "residentId": "11010519491231002X"]))
            #expect(own.status == .created)
            let ownBody = try Self.body(own)
            #expect(ownBody["sex"] as? String == "female" && ownBody["birthDate"] as? String == "1949-12-31")
            #expect(ownBody["province"] as? String == "北京" && ownBody["residentId"] as? String == "11010519491231002X")

            let mother = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json([
                    "relationship": "parent", "name": "李秀英", "residentId": Self.mother, "phone": "13912345678",
                ]))
            #expect(mother.status == .created)
            #expect(try Self.body(mother)["province"] as? String == "河北")

            try await client.execute(uri: "/me/patients", method: .get, headers: headers["acct_a"]!) {
                response throws in
                let patients = try Self.body(response)["patients"] as! [[String: Any]]
                #expect(patients.map { $0["name"] as? String } == ["王芳", "李秀英"])
                #expect(
                    patients.map { $0["residentId"] as? String } == [
                        "1101**********002X", "1301**********" + Self.mother.suffix(4),
                    ])
                #expect(patients[1]["phone"] as? String == "139****5678")
            }
            // The event says who and where from, never the name or the number.
            let event = try await database.writer.read { db in
                try String.fetchAll(db, sql: "SELECT CAST(event AS TEXT) FROM queue_outbox")
            }.joined()
            #expect(event.contains("registration.patient-registered.v1") && event.contains("河北"))
            #expect(!event.contains("李秀英") && !event.contains(Self.mother))
        }
    }

    @Test func anotherAccountsPatientDoesNotExistForYou() async throws {
        try await Self.withRegistration { client, database, headers in
            let created = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json(["relationship": "self", "name": "王芳", "residentId": "11010519491231002X"]))
            let id = try #require(try Self.body(created)["id"] as? String)
            // The same answer as for an id that exists nowhere: 404, nothing revealed.
            for (who, uri, method) in [
                ("acct_b", "/me/patients/\(id)", HTTPRequest.Method.get),
                ("acct_b", "/me/patients/pat_nonexistent", .get),
            ] {
                try await client.execute(uri: uri, method: method, headers: headers[who]!) { response throws in
                    #expect(response.status == .notFound, "\(who) \(uri)")
                }
            }
            try await client.execute(
                uri: "/me/patients/\(id)", method: .put, headers: headers["acct_b"]!,
                body: try Self.json(["relationship": "self", "name": "冒名", "residentId": "11010519491231002X"])
            ) { response throws in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/me/patients", method: .get, headers: headers["acct_b"]!) {
                response throws in
                #expect((try Self.body(response)["patients"] as! [Any]).isEmpty)
            }
            // Staff do not reach patients through the account routes at all.
            try await client.execute(uri: "/me/patients/\(id)", method: .get, headers: headers["doctor"]!) {
                response throws in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/me/patients/\(id)", method: .get) { response throws in
                #expect(response.status == .unauthorized)
            }
            // The owner's creation is audited with the patient, and so are the other account's refused attempts.
            let rows = try await database.writer.read { db in try AuditTrail.page(AuditQuery(patientID: id), in: db) }
            #expect(
                rows.map { "\($0.actor) \($0.action) \($0.outcome)" } == [
                    "acct_a create success", "acct_b read denied", "acct_b update denied",
                ])
        }
    }

    @Test func staffSeeAPatientWholeOnlyThroughBreakGlassUntilTheyHaveARelationship() async throws {
        try await Self.withRegistration { client, database, headers in
            let created = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json(["relationship": "self", "name": "王芳", "residentId": "11010519491231002X"]))
            let id = try #require(try Self.body(created)["id"] as? String)
            // The account sees its patient here too.
            let own = try await client.execute(uri: "/patients/\(id)", method: .get, headers: headers["acct_a"]!)
            #expect(own.status == .ok)
            // A doctor without an appointment with the patient does not.
            let refused = try await client.execute(uri: "/patients/\(id)", method: .get, headers: headers["doctor"]!)
            #expect(refused.status == .notFound)
            // In an emergency, with a reason, they do: the whole record, and the trail says why.
            var glass = headers["doctor"]!
            glass[BreakGlass.header] = "夜间急诊：患者昏迷，需核实身份".addingPercentEncoding(withAllowedCharacters: .alphanumerics)
            let allowed = try await client.execute(uri: "/patients/\(id)", method: .get, headers: glass)
            #expect(allowed.status == .ok)
            #expect(try Self.body(allowed)["residentId"] as? String == "11010519491231002X")
            let rows = try await database.writer.read { db in try AuditTrail.page(AuditQuery(actor: "staff_1"), in: db)
            }
            #expect(rows.map(\.outcome) == ["denied", "success"])
            #expect(rows.last?.breakGlassReason == "夜间急诊：患者昏迷，需核实身份")
        }
    }

    @Test func eachRuleOfAProfileNamesItsField() async throws {
        try await Self.withRegistration { client, _, headers in
            let cases: [([String: String], String)] = [
                (["relationship": "self", "name": "", "residentId": "11010519491231002X"], "name"),
                (["relationship": "self", "name": "王芳1", "residentId": "11010519491231002X"], "name"),
                (["relationship": "self", "name": "王芳", "residentId": "110105194912310021"], "residentId"),
                (["relationship": "self", "name": "王芳", "residentId": "11010519491231002X", "sex": "male"], "sex"),
                (
                    [
                        "relationship": "self", "name": "王芳", "residentId": "11010519491231002X",
                        "birthDate": "1949-12-30",
                    ],
                    "birthDate"
                ),
                (
                    ["relationship": "self", "name": "Anna Schmidt", "sex": "female", "birthDate": "1980-02-30"],
                    "birthDate"
                ),
                (
                    ["relationship": "self", "name": "Anna Schmidt", "sex": "female", "birthDate": "2999-01-01"],
                    "birthDate"
                ),
                (
                    ["relationship": "self", "name": "Anna Schmidt", "sex": "female", "birthDate": "1980-02-01"],
                    "province"
                ),
                (
                    ["relationship": "self", "name": "王芳", "residentId": "11010519491231002X", "phone": "12345"],
                    "phone"
                ),
            ]
            for (input, field) in cases {
                try await client.execute(
                    uri: "/me/patients", method: .post, headers: headers["acct_a"]!, body: try Self.json(input)
                ) { response throws in
                    #expect(response.status == .unprocessableContent, "\(input)")
                    let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                    #expect(problem.code == "invalid-patient")
                    #expect(problem.extensions["field"] == field, "\(input): \(problem.detail)")
                }
            }
            // A passport holder without a resident ID: sex, birth date and province given.
            let foreign = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json([
                    "relationship": "self", "name": "Anna Schmidt", "sex": "female", "birthDate": "1980-02-01",
                    "province": "北京",
                ]))
            #expect(foreign.status == .created)
            // A second own profile, and the same person twice, are conflicts.
            let secondSelf = try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json(["relationship": "self", "name": "王芳", "residentId": "11010519491231002X"]))
            #expect(secondSelf.status == .conflict)
            for _ in 0..<2 {
                _ = try await client.execute(
                    uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                    body: try Self.json(["relationship": "parent", "name": "李秀英", "residentId": Self.mother]))
            }
            try await client.execute(
                uri: "/me/patients", method: .post, headers: headers["acct_a"]!,
                body: try Self.json(["relationship": "parent", "name": "李秀英", "residentId": Self.mother])
            ) { response throws in
                #expect(response.status == .conflict)
                #expect(
                    try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body)).code
                        == "patient-exists")
            }
        }
    }
}
