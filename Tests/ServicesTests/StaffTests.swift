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

/// Staff accounts: the first admin, staff created by an admin, bcrypt passwords, lockout, password change.
@Suite struct StaffTests {
    static let firstPassword = "Bootstrap-2026!"

    static func withRegistration(
        _ body: @escaping @Sendable (any TestClientProtocol, ServiceDatabase) async throws -> Void
    ) async throws {
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let identity = await TestIdentity.registration()
        let signIn = SignInService(
            database: database.writer, gateway: identity.gateway, issuer: identity.issuer, policy: identity.policy,
            logger: Logger(label: "t"))
        #expect(
            try identity.staffAdministration(database: database).bootstrapAdmin(password: Self.firstPassword)
        )
        // Only while there is no admin.
        #expect(
            try identity.staffAdministration(database: database).bootstrapAdmin(password: "Another-2026!")
                == false)
        let router = buildRouter(database: database, identity: identity)
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        try await app.test(.router) { client in try await body(client, database) }
    }

    static func post(
        _ client: any TestClientProtocol, _ path: String, _ json: [String: Any], token: String? = nil
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: path, method: .post, headers: headers,
            body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
    }

    static func object(_ response: TestResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
    }

    static func problemCode(_ response: TestResponse) throws -> String {
        try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body)).code
    }

    /// Signs in; returns the access token and the refresh token.
    static func signIn(_ client: any TestClientProtocol, _ username: String, _ password: String) async throws
        -> (access: String, refresh: String, mustChange: Bool)
    {
        let response = try await post(client, "/auth/staff/sign-in", ["username": username, "password": password])
        #expect(response.status == .ok, "\(username): \(String(buffer: response.body))")
        let body = try object(response)
        let session = body["session"] as! [String: Any]
        return (
            session["accessToken"] as! String, session["refreshToken"] as! String, body["mustChangePassword"] as! Bool
        )
    }

    /// Signs in with a temporary password, replaces it with `new`, and signs in again: a working session.
    static func firstSignIn(_ client: any TestClientProtocol, _ username: String, temporary: String, new: String)
        async throws -> (access: String, refresh: String, mustChange: Bool)
    {
        let first = try await signIn(client, username, temporary)
        let changed = try await post(
            client, "/auth/staff/password", ["currentPassword": temporary, "newPassword": new], token: first.access)
        #expect(changed.status == .noContent)
        return try await signIn(client, username, new)
    }

    @Test func theFirstAdminChangesItsPasswordAndCreatesADoctor() async throws {
        try await Self.withRegistration { client, database in
            let first = try await Self.signIn(client, "admin", Self.firstPassword)
            #expect(first.mustChange)
            // Until the temporary password is replaced, the session can do nothing else.
            try await client.execute(
                uri: "/admin/staff", method: .get, headers: [.authorization: "Bearer \(first.access)"]
            ) {
                response throws in #expect(response.status == .forbidden)
            }
            let weak = try await Self.post(
                client, "/auth/staff/password", ["currentPassword": Self.firstPassword, "newPassword": "password"],
                token: first.access)
            #expect(try Self.problemCode(weak) == "weak-password")
            let changed = try await Self.post(
                client, "/auth/staff/password",
                ["currentPassword": Self.firstPassword, "newPassword": "Xueye-Admin-77"], token: first.access)
            #expect(changed.status == .noContent)
            // Every session of the admin ended with the change.
            let stale = try await Self.post(client, "/auth/refresh", ["refreshToken": first.refresh])
            #expect(try Self.problemCode(stale) == "refresh-token-invalid")
            let admin = try await Self.signIn(client, "admin", "Xueye-Admin-77")
            #expect(admin.mustChange == false)

            let created = try await Self.post(
                client, "/admin/staff",
                [
                    "username": "zhang.wei", "displayName": "张伟", "roles": ["doctor", "scheduler"],
                    "temporaryPassword": "Temp-Pass-2026",
                ], token: admin.access)
            #expect(created.status == .created, "\(String(buffer: created.body))")
            #expect(try Self.object(created)["roles"] as? [String] == ["doctor", "scheduler"])
            #expect(
                String(buffer: created.body).contains("password") == false
                    || String(buffer: created.body).contains("mustChangePassword"))

            let temporary = try await Self.signIn(client, "zhang.wei", "Temp-Pass-2026")
            #expect(temporary.mustChange)
            #expect(
                try await TokenVerifier(publicKeys: [TestIdentity.signingKey.verificationKey]).verify(temporary.access)
                    .roles.isEmpty)
            let doctor = try await Self.firstSignIn(
                client, "zhang.wei", temporary: "Temp-Pass-2026", new: "Zhang-Wei-Own-9")
            #expect(doctor.mustChange == false)
            let principal = try await TokenVerifier(publicKeys: [TestIdentity.signingKey.verificationKey]).verify(
                doctor.access)
            #expect(principal.kind == .staff && principal.roles == [.doctor, .scheduler])
            // A staff refresh keeps the staff roles.
            let refreshed = try await Self.post(client, "/auth/refresh", ["refreshToken": doctor.refresh])
            let again = try Self.object(refreshed)["accessToken"] as! String
            #expect(
                try await TokenVerifier(publicKeys: [TestIdentity.signingKey.verificationKey]).verify(again).roles == [
                    .doctor, .scheduler,
                ])

            // Administration is for admins.
            try await client.execute(
                uri: "/admin/staff", method: .get, headers: [.authorization: "Bearer \(doctor.access)"]
            ) {
                response throws in #expect(response.status == .forbidden)
            }
            try await client.execute(
                uri: "/admin/staff", method: .get, headers: [.authorization: "Bearer \(admin.access)"]
            ) {
                response throws in
                let staff = try Self.object(response)["staff"] as! [[String: Any]]
                #expect(staff.map { $0["username"] as? String } == ["admin", "zhang.wei"])
            }
            // Passwords are stored as bcrypt hashes only, and the trail has the staff events.
            let stored = try await database.writer.read { db in
                try String.fetchAll(db, sql: "SELECT password_hash FROM staff")
            }
            #expect(stored.allSatisfy { $0.hasPrefix("$2b$") || $0.hasPrefix("$2a$") })
            let trail = try await database.writer.read { db in
                try AuditTrail.page(AuditQuery(), in: db).map(\.resourceType)
            }
            #expect(trail.contains("staff") && trail.contains("staff-password") && trail.contains("session"))
        }
    }

    @Test func fiveWrongPasswordsLockTheAccount() async throws {
        try await Self.withRegistration { client, _ in
            for _ in 0..<4 {
                let wrong = try await Self.post(
                    client, "/auth/staff/sign-in", ["username": "admin", "password": "Wrong-Pass-1"])
                #expect(wrong.status == .unauthorized)
                #expect(try Self.problemCode(wrong) == "invalid-credentials")
            }
            let fifth = try await Self.post(
                client, "/auth/staff/sign-in", ["username": "admin", "password": "Wrong-Pass-1"])
            #expect(fifth.status == .tooManyRequests)
            #expect(try Self.problemCode(fifth) == "account-locked")
            // Locked: even the right password is refused.
            let right = try await Self.post(
                client, "/auth/staff/sign-in", ["username": "admin", "password": Self.firstPassword])
            #expect(try Self.problemCode(right) == "account-locked")
            // An unknown username gets the same answer as a wrong password.
            let unknown = try await Self.post(
                client, "/auth/staff/sign-in", ["username": "nobody", "password": "Wrong-Pass-1"])
            #expect(unknown.status == .unauthorized)
            #expect(try Self.problemCode(unknown) == "invalid-credentials")
        }
    }

    @Test func eachRuleOfANewStaffMemberNamesItsField() async throws {
        try await Self.withRegistration { client, _ in
            let admin = try await Self.firstSignIn(
                client, "admin", temporary: Self.firstPassword, new: "Xueye-Admin-77")
            let valid: [String: Any] = [
                "username": "li.na", "displayName": "李娜", "roles": ["nurse"], "temporaryPassword": "Temp-Pass-2026",
            ]
            let cases: [(String, Any, String)] = [
                ("username", "9abc", "username"), ("displayName", "", "displayName"), ("roles", ["surgeon"], "roles"),
                ("roles", ["patient"], "roles"), ("roles", [String](), "roles"),
                ("temporaryPassword", "short", "temporaryPassword"),
                ("temporaryPassword", "li.na-Pass-2026", "temporaryPassword"),
                ("departmentIds", ["no-such-department"], "departmentIds"),
            ]
            for (key, value, field) in cases {
                var input = valid
                input[key] = value
                let response = try await Self.post(client, "/admin/staff", input, token: admin.access)
                #expect(response.status == .unprocessableContent, "\(key)=\(value)")
                let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                #expect(problem.extensions["field"] == field, "\(key)=\(value): \(problem.detail)")
            }
            #expect(try await Self.post(client, "/admin/staff", valid, token: admin.access).status == .created)
            let twice = try await Self.post(client, "/admin/staff", valid, token: admin.access)
            #expect(try Self.problemCode(twice) == "username-taken")
        }
    }
}
