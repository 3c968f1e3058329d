import Foundation
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

/// Integrator accounts: API keys shown once, stored hashed, scoped to event types, revocable.
@Suite struct IntegratorTests {
    @Test func anAdminMakesAKeyTheIntegratorTradesItForAScopedTokenAndARevokedKeyStopsWorking() async throws {
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let router = buildRouter(database: database, identity: await TestIdentity.registration())
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        let issuer = await TokenIssuer(signingKey: TestIdentity.signingKey)
        let (adminToken, _) = try await issuer.issue(subject: "staff_admin", kind: .staff, roles: [.admin])
        let (doctorToken, _) = try await issuer.issue(subject: "staff_doc", kind: .staff, roles: [.doctor])
        let admin: HTTPFields = [.authorization: "Bearer \(adminToken)", .contentType: "application/json"]
        @Sendable func json(_ object: [String: Any]) throws -> ByteBuffer {
            ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
        }
        @Sendable func body(_ response: TestResponse) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
        }
        try await app.test(.router) { client in
            // Only admins, and only known event types.
            let byDoctor = try await client.execute(
                uri: "/admin/integrators", method: .post,
                headers: [.authorization: "Bearer \(doctorToken)", .contentType: "application/json"],
                body: try json(["name": "HIS", "eventTypes": ["registration.patient-registered.v1"]]))
            #expect(byDoctor.status == .forbidden)
            let unknownType = try await client.execute(
                uri: "/admin/integrators", method: .post, headers: admin,
                body: try json(["name": "HIS", "eventTypes": ["reports.report-ready.v9"]]))
            #expect(unknownType.status == .unprocessableContent)

            let created = try await client.execute(
                uri: "/admin/integrators", method: .post, headers: admin,
                body: try json(["name": "医院信息系统 HIS", "eventTypes": ["registration.patient-registered.v1"]]))
            #expect(created.status == .created)
            let made = try body(created)
            let apiKey = try #require(made["apiKey"] as? String)
            let integrator = try #require(made["integratorId"] as? String)
            let keyID = try #require((made["key"] as? [String: Any])?["id"] as? String)

            // The secret is never shown again, nor stored.
            try await client.execute(uri: "/admin/integrators", method: .get, headers: admin) { response throws in
                #expect(!String(buffer: response.body).contains(String(apiKey.suffix(64))))
                #expect(String(buffer: response.body).contains(keyID))
            }
            let stored = try await database.writer.read { db in
                try String.fetchAll(db, sql: "SELECT secret_hash FROM integrator_key")
            }
            #expect(stored.count == 1 && !stored[0].contains(String(apiKey.suffix(64))))

            // The key buys a 15-minute integrator token scoped to its event types.
            let traded = try await client.execute(
                uri: "/auth/integrator/token", method: .post, headers: [.authorization: "ApiKey \(apiKey)"])
            #expect(traded.status == .ok)
            let principal = try await TestIdentity.verifier().verify(
                try #require(try body(traded)["accessToken"] as? String))
            #expect(
                principal.kind == .integrator && principal.subject == integrator && principal.roles == [.integrator])
            #expect(principal.scopes == ["registration.patient-registered.v1"])

            // A wrong secret, a malformed key, and after revocation the real key: all refused alike.
            let wrongSecret = "yzk_\(keyID)_" + String(repeating: "0", count: 64)
            for presented in [wrongSecret, "yzk_nonsense", apiKey + "x"] {
                let refused = try await client.execute(
                    uri: "/auth/integrator/token", method: .post, headers: [.authorization: "ApiKey \(presented)"])
                #expect(refused.status == .unauthorized, "\(presented)")
            }
            let revoked = try await client.execute(
                uri: "/admin/integrators/\(integrator)/keys/\(keyID)", method: .delete, headers: admin)
            #expect(revoked.status == .noContent)
            let afterRevocation = try await client.execute(
                uri: "/auth/integrator/token", method: .post, headers: [.authorization: "ApiKey \(apiKey)"])
            #expect(afterRevocation.status == .unauthorized)
            let again = try await client.execute(
                uri: "/admin/integrators/\(integrator)/keys/\(keyID)", method: .delete, headers: admin)
            #expect(again.status == .notFound)
        }
        let trail = try await database.writer.read { db in try AuditTrail.page(AuditQuery(actor: "staff_admin"), in: db)
        }
        #expect(
            trail.map { "\($0.action) \($0.resourceType)" } == [
                "create integrator", "create integrator-key", "delete integrator-key",
            ])
        // The refused request (an unknown event type) left no integrator behind.
        let integrators = try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM integrator")
        }
        #expect(integrators == 1)
    }
}
