import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage
import YunzhenTesting

/// The hash-chained audit trail on a real SQLite file: rows chain, edits and deletions show, the table refuses
/// changes, and the admin endpoints page through it and verify it.
@Suite struct AuditTrailTests {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        AuditTrail.registerMigration(in: &migrator)
        return migrator
    }

    static func entry(_ actor: String, patient: String?, action: AuditAction = .read) -> AuditEntry {
        AuditEntry(
            actor: actor, actorRole: "doctor", patientID: patient, action: action, resourceType: "appointment",
            resourceID: "a1", requestID: "req-1", clientAddress: "10.0.0.5", outcome: .success)
    }

    @Test func rowsChainAndAnEditOrDeletionInPlaceIsFound() async throws {
        try await withTemporaryDirectory { directory in
            let database = try ServiceDatabase.open(
                directory: directory, name: "audit", migrator: Self.migrator, logger: CapturedLogs().logger())
            try await database.writer.write { db in
                for index in 0..<5 {
                    try AuditTrail.record(Self.entry("staff_\(index)", patient: "p\(index % 2)"), in: db)
                }
            }
            let clean = try await database.writer.read { db in try AuditTrail.verify(in: db) }
            #expect(clean.intact && clean.rows == 5 && clean.firstBrokenID == nil)

            // The table refuses changes…
            await #expect(throws: DatabaseError.self) {
                try await database.writer.write { db in
                    try db.execute(sql: "UPDATE audit_log SET actor = 'nobody' WHERE id = 3")
                }
            }
            await #expect(throws: DatabaseError.self) {
                try await database.writer.write { db in try db.execute(sql: "DELETE FROM audit_log WHERE id = 2") }
            }
            // …and someone who drops the triggers to edit a row is found out by the chain.
            try await database.writer.write { db in
                try db.execute(sql: "DROP TRIGGER audit_log_no_update")
                try db.execute(sql: "UPDATE audit_log SET patient_id = 'p9' WHERE id = 3")
            }
            let edited = try await database.writer.read { db in try AuditTrail.verify(in: db) }
            #expect(!edited.intact)
            #expect(edited.firstBrokenID == 3)

            try await database.writer.write { db in
                try db.execute(sql: "UPDATE audit_log SET patient_id = 'p0' WHERE id = 3")
                try db.execute(sql: "DROP TRIGGER audit_log_no_delete")
                try db.execute(sql: "DELETE FROM audit_log WHERE id = 2")
            }
            let deleted = try await database.writer.read { db in try AuditTrail.verify(in: db) }
            #expect(!deleted.intact)
            #expect(deleted.firstBrokenID == 3)
        }
    }

    @Test func adminsPageAndVerifyTheTrailOthersMayNot() async throws {
        let database = try ServiceDatabase.inMemory(migrator: Self.migrator)
        try await database.writer.write { db in
            for index in 0..<7 {
                try AuditTrail.record(Self.entry(index < 4 ? "staff_1" : "staff_2", patient: "p\(index % 3)"), in: db)
            }
        }
        let key = try SigningKey.generate(keyID: "k1")
        let verifier = await TokenVerifier(publicKeys: [key.verificationKey])
        let issuer = await TokenIssuer(signingKey: key)
        let (admin, _) = try await issuer.issue(subject: "staff_admin", kind: .staff, roles: [.admin])
        let (doctor, _) = try await issuer.issue(subject: "staff_1", kind: .staff, roles: [.doctor])
        let router = ServiceApplication.makeRouter()
        AuditRoutes.add(to: router, database: database, verifier: verifier)
        let app = ServiceApplication.make(
            name: "test", router: router, settings: ServerSettings(port: 0), logger: CapturedLogs().logger())
        struct Page: Decodable {
            var rows: [AuditRecord]
            var next: Int64?
        }
        try await app.test(.router) { client in
            let asAdmin: HTTPFields = [.authorization: "Bearer \(admin)"]
            try await client.execute(uri: "/admin/audit?patient=p0&limit=2", method: .get, headers: asAdmin) {
                response throws in
                #expect(response.status == .ok)
                let page = try JSONDecoder().decode(Page.self, from: Data(buffer: response.body))
                #expect(page.rows.map(\.id) == [1, 4])
                #expect(page.next == 4)
            }
            try await client.execute(uri: "/admin/audit?patient=p0&after=4", method: .get, headers: asAdmin) {
                response throws in
                let page = try JSONDecoder().decode(Page.self, from: Data(buffer: response.body))
                // Row 8 is the admin's own first read, which concerned patient p0.
                #expect(page.rows.map(\.id) == [7, 8])
                #expect(page.rows.map(\.resourceType) == ["appointment", "audit-log"])
                #expect(page.next == nil)
            }
            try await client.execute(uri: "/admin/audit?actor=staff_2", method: .get, headers: asAdmin) {
                response throws in
                let page = try JSONDecoder().decode(Page.self, from: Data(buffer: response.body))
                #expect(page.rows.map(\.id) == [5, 6, 7])
            }
            try await client.execute(uri: "/admin/audit?limit=5000", method: .get, headers: asAdmin) {
                response throws in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("`limit` must be an integer from 1 to 1000."))
            }
            try await client.execute(uri: "/admin/audit/verify", method: .get, headers: asAdmin) { response throws in
                let verification = try JSONDecoder().decode(AuditVerification.self, from: Data(buffer: response.body))
                // Seven rows, plus one for each page the admin read.
                #expect(verification.intact && verification.rows == 10)
            }
            try await client.execute(
                uri: "/admin/audit", method: .get, headers: [.authorization: "Bearer \(doctor)"]
            ) { response throws in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/admin/audit/verify", method: .get) { response throws in
                #expect(response.status == .unauthorized)
            }
        }
        // The admin's reads are in the trail, with the patient they concerned.
        let reads = try await database.writer.read { db in
            try AuditTrail.page(AuditQuery(actor: "staff_admin"), in: db)
        }
        #expect(reads.map(\.resourceType) == ["audit-log", "audit-log", "audit-log"])
        #expect(reads.map(\.patientID) == ["p0", "p0", nil])
    }
}
