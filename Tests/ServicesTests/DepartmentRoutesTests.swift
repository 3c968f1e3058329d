import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import RegistrationService
import Testing
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

@Suite struct DepartmentRoutesTests {
    static func withRegistration(
        database: ServiceDatabase? = nil,
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let database = try database ?? ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let router = buildRouter(database: database, identity: await TestIdentity.registration())
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        try await app.test(.router, body)
    }

    static func json(_ value: some Encodable) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(value))
    }

    static let hematology = DepartmentUpsert(name: "血液科", nameEn: "Hematology", description: "Blood diseases")
    /// The headers of an admin's write.
    static func authorized() async throws -> HTTPFields {
        [
            .authorization: "Bearer \(try await TestIdentity.token("staff_admin", roles: [.admin]))",
            .contentType: "application/json",
        ]
    }

    static func problem(_ response: TestResponse) throws -> ProblemDocument {
        try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
    }

    @Test func anAdminCreatesThenUpdatesAndPatientsSeeIt() async throws {
        let authorized = try await Self.authorized()
        try await Self.withRegistration { client in
            try await client.execute(
                uri: "/departments/hematology", method: .put, headers: authorized,
                body: try Self.json(Self.hematology)
            ) {
                #expect($0.status == .created)
            }
            var renamed = Self.hematology
            renamed.nameEn = "Haematology"
            try await client.execute(
                uri: "/departments/hematology", method: .put, headers: authorized, body: try Self.json(renamed)
            ) {
                #expect($0.status == .ok)
            }
            let list = try await client.execute(uri: "/departments", method: .get) {
                try JSONDecoder().decode(DepartmentList.self, from: Data(buffer: $0.body))
            }
            #expect(
                list.departments == [
                    Department(
                        id: DepartmentID("hematology"), name: "血液科", nameEn: "Haematology",
                        description: "Blood diseases")
                ])
            let one = try await client.execute(uri: "/departments/hematology", method: .get) {
                try JSONDecoder().decode(Department.self, from: Data(buffer: $0.body))
            }
            #expect(one.nameEn == "Haematology")
        }
    }

    @Test func savingADepartmentPublishesDepartmentSavedInTheSameTransaction() async throws {
        let authorized = try await Self.authorized()
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        try await Self.withRegistration(database: database) { client in
            for _ in 0..<2 {
                try await client.execute(
                    uri: "/departments/hematology", method: .put, headers: authorized,
                    body: try Self.json(Self.hematology)
                ) { _ in }
            }
            // Refused writes publish nothing.
            try await client.execute(
                uri: "/departments/Bad_Code", method: .put, headers: authorized,
                body: try Self.json(Self.hematology)
            ) { _ in }
        }
        let events = try await database.writer.read { db in
            try Data.fetchAll(db, sql: "SELECT event FROM queue_outbox ORDER BY id").map {
                try EventCoding.decoder.decode(CloudEvent<DepartmentSaved>.self, from: $0)
            }
        }
        #expect(events.map(\.type) == [DepartmentSaved.eventType, DepartmentSaved.eventType])
        #expect(events.map(\.data.created) == [true, false])
        #expect(events.map(\.subject) == ["hematology", "hematology"])
        #expect(Set(events.map(\.id)).count == 2)
    }

    @Test func unknownDepartmentIs404() async throws {
        try await Self.withRegistration { client in
            try await client.execute(uri: "/departments/nephrology", method: .get) { response throws in
                #expect(response.status == .notFound)
                #expect(try Self.problem(response).detail.contains("nephrology"))
            }
        }
    }

    @Test func writesNeedAnAdminAndAreAudited() async throws {
        let authorized = try await Self.authorized()
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let doctor = try await TestIdentity.token("staff_doc", roles: [.doctor, .scheduler])
        try await Self.withRegistration(database: database) { client in
            try await client.execute(uri: "/departments/hematology", method: .put, body: try Self.json(Self.hematology))
            {
                response throws in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
            try await client.execute(
                uri: "/departments/hematology", method: .put,
                headers: [.authorization: "Bearer \(doctor)", .contentType: "application/json"],
                body: try Self.json(Self.hematology)
            ) { response throws in
                #expect(response.status == .forbidden)
                #expect(try Self.problem(response).code == "role-required")
            }
            let list = try await client.execute(uri: "/departments", method: .get) {
                try JSONDecoder().decode(DepartmentList.self, from: Data(buffer: $0.body))
            }
            #expect(list.departments.isEmpty)
            try await client.execute(
                uri: "/departments/hematology", method: .put, headers: authorized,
                body: try Self.json(Self.hematology)
            ) { #expect($0.status == .created) }
        }
        let rows = try await database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT actor, action, resource_type, resource_id FROM audit_log")
        }
        #expect(rows.count == 1)
        #expect(rows.first?["actor"] == "staff_admin")
        #expect(rows.first?["resource_id"] == "hematology")
        #expect(rows.first?["action"] == "create")
    }

    @Test func invalidFieldsAreNamed() async throws {
        let authorized = try await Self.authorized()
        try await Self.withRegistration { client in
            try await client.execute(
                uri: "/departments/Bad_Code", method: .put, headers: authorized,
                body: try Self.json(Self.hematology)
            ) { response throws in
                #expect(response.status == .unprocessableContent)
                #expect(try Self.problem(response).detail.hasPrefix("`id`"))
            }
            let blank = DepartmentUpsert(name: "  ", nameEn: "Hematology", description: "")
            try await client.execute(
                uri: "/departments/hematology", method: .put, headers: authorized, body: try Self.json(blank)
            ) {
                response throws in
                #expect(response.status == .unprocessableContent)
                #expect(try Self.problem(response).detail == "`name` must not be empty.")
            }
            try await client.execute(
                uri: "/departments/hematology", method: .put, headers: authorized,
                body: ByteBuffer(string: "{not json")
            ) { response throws in
                #expect(response.status == .badRequest)
                #expect(try Self.problem(response).code == "invalid-body")
            }
        }
    }
}
