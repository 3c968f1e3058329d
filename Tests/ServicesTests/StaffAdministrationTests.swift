import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

@testable import RegistrationService

/// What admins do with staff: departments and teams that reach the tokens, disabling, password resets, and the
/// rules that keep the platform manageable.
@Suite struct StaffAdministrationTests {
    typealias Staff = StaffTests

    static func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ json: [String: Any]? = nil,
        token: String
    ) async throws -> TestResponse {
        try await client.execute(
            uri: path, method: method,
            headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
            body: try json.map { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: $0)) })
    }

    static func principal(_ token: String) async throws -> Principal {
        try await TestIdentity.verifier().verify(token)
    }

    /// The admin's working session, the hematology department, and a doctor in it who has chosen a password.
    static func withDoctor(
        _ body: @escaping @Sendable (any TestClientProtocol, ServiceDatabase, String, String) async throws -> Void
    ) async throws {
        try await Staff.withRegistration { client, database in
            let admin = try await Staff.firstSignIn(
                client, "admin", temporary: Staff.firstPassword, new: "Xueye-Admin-77")
            for department in ["hematology", "fever-clinic"] {
                let saved = try await send(
                    client, .put, "/departments/\(department)",
                    ["name": "科室", "nameEn": department, "description": ""],
                    token: admin.access)
                #expect(saved.status == .created)
            }
            let created = try await send(
                client, .post, "/admin/staff",
                [
                    "username": "wang.jian", "displayName": "王建", "roles": ["doctor"],
                    "departmentIds": ["hematology"], "temporaryPassword": "Temp-Pass-2026",
                ], token: admin.access)
            #expect(created.status == .created)
            let doctorID = try #require(try Staff.object(created)["id"] as? String)
            try await body(client, database, admin.access, doctorID)
        }
    }

    @Test func departmentsAndTeamsReachTheTokensAtTheNextRefresh() async throws {
        try await Self.withDoctor { client, _, admin, doctorID in
            let team = try await Self.send(
                client, .post, "/admin/teams", ["departmentId": "hematology", "name": "王建主任治疗组"], token: admin)
            #expect(team.status == .created)
            let teamID = try #require(try Staff.object(team)["id"] as? String)
            let sameName = try await Self.send(
                client, .post, "/admin/teams", ["departmentId": "hematology", "name": "王建主任治疗组"], token: admin)
            #expect(try Staff.problemCode(sameName) == "team-exists")
            let noDepartment = try await Self.send(
                client, .post, "/admin/teams", ["departmentId": "nephrology", "name": "组"], token: admin)
            #expect(try Staff.problemCode(noDepartment) == "invalid-team")

            let added = try await Self.send(client, .put, "/admin/teams/\(teamID)/members/\(doctorID)", token: admin)
            #expect(added.status == .ok)
            let members = try Staff.object(added)["members"] as! [[String: Any]]
            #expect(members.map { $0["displayName"] as? String } == ["王建"])

            let doctor = try await Staff.firstSignIn(
                client, "wang.jian", temporary: "Temp-Pass-2026", new: "Wang-Jian-Own-9")
            let principal = try await Self.principal(doctor.access)
            #expect(principal.departments == ["hematology"] && principal.teams == [teamID])

            // Moving the doctor to the fever clinic takes them out of the hematology team too…
            let moved = try await Self.send(
                client, .put, "/admin/staff/\(doctorID)",
                ["displayName": "王建", "roles": ["doctor", "scheduler"], "departmentIds": ["fever-clinic"]],
                token: admin)
            #expect(moved.status == .ok)
            #expect(try Staff.object(moved)["teamIds"] as? [String] == [])
            // …and a team takes only staff of its department.
            let outsider = try await Self.send(
                client, .put, "/admin/teams/\(teamID)/members/\(doctorID)", token: admin)
            #expect(try Staff.problemCode(outsider) == "not-in-department")
            // The token still in hand says what it said; the next refresh says what is true now.
            let refreshed = try await Staff.post(client, "/auth/refresh", ["refreshToken": doctor.refresh])
            let now = try await Self.principal(try Staff.object(refreshed)["accessToken"] as! String)
            #expect(now.departments == ["fever-clinic"] && now.teams.isEmpty && now.roles == [.doctor, .scheduler])

            let unknownDepartment = try await Self.send(
                client, .put, "/admin/staff/\(doctorID)",
                ["displayName": "王建", "roles": ["doctor"], "departmentIds": ["nephrology"]], token: admin)
            #expect(try Staff.problemCode(unknownDepartment) == "invalid-staff")
            let gone = try await Self.send(client, .get, "/admin/staff/staff_nobody", token: admin)
            #expect(gone.status == .notFound)
        }
    }

    @Test func disablingEndsEverySessionAtOnceAndEnablingAllowsSignInAgain() async throws {
        try await Self.withDoctor { client, database, admin, doctorID in
            let doctor = try await Staff.firstSignIn(
                client, "wang.jian", temporary: "Temp-Pass-2026", new: "Wang-Jian-Own-9")
            let disabled = try await Self.send(client, .post, "/admin/staff/\(doctorID)/disable", token: admin)
            #expect(try Staff.object(disabled)["disabled"] as? Bool == true)
            let refresh = try await Staff.post(client, "/auth/refresh", ["refreshToken": doctor.refresh])
            #expect(try Staff.problemCode(refresh) == "refresh-token-invalid")
            let signIn = try await Staff.post(
                client, "/auth/staff/sign-in", ["username": "wang.jian", "password": "Wang-Jian-Own-9"])
            #expect(try Staff.problemCode(signIn) == "invalid-credentials")

            let enabled = try await Self.send(client, .post, "/admin/staff/\(doctorID)/enable", token: admin)
            #expect(try Staff.object(enabled)["disabled"] as? Bool == false)
            _ = try await Staff.signIn(client, "wang.jian", "Wang-Jian-Own-9")

            // Only admins do this, and the trail names who did it.
            let byDoctor = try await Self.send(client, .post, "/admin/staff/\(doctorID)/disable", token: doctor.access)
            #expect(byDoctor.status == .forbidden)
            let trail = try await database.writer.read { db in
                try AuditTrail.page(AuditQuery(), in: db).filter { $0.resourceID == doctorID }.map(\.resourceType)
            }
            #expect(trail.contains("staff-disabled") && trail.contains("staff-enabled"))
        }
    }

    @Test func aPasswordResetLiftsTheLockoutEndsSessionsAndMustBeChanged() async throws {
        try await Self.withDoctor { client, _, admin, doctorID in
            let doctor = try await Staff.firstSignIn(
                client, "wang.jian", temporary: "Temp-Pass-2026", new: "Wang-Jian-Own-9")
            for _ in 0..<StaffDirectory.maximumFailures {
                _ = try await Staff.post(
                    client, "/auth/staff/sign-in", ["username": "wang.jian", "password": "Forgot-It-123"])
            }
            let locked = try await Self.send(client, .get, "/admin/staff/\(doctorID)", token: admin)
            #expect(try Staff.object(locked)["lockedUntil"] != nil)

            let weak = try await Self.send(
                client, .post, "/admin/staff/\(doctorID)/password-reset", ["temporaryPassword": "short"], token: admin)
            #expect(try Staff.problemCode(weak) == "invalid-staff")
            let reset = try await Self.send(
                client, .post, "/admin/staff/\(doctorID)/password-reset", ["temporaryPassword": "Reset-Pass-2026"],
                token: admin)
            #expect(reset.status == .ok)
            #expect(try Staff.object(reset)["mustChangePassword"] as? Bool == true)
            #expect(try Staff.object(reset)["lockedUntil"] == nil)
            let old = try await Staff.post(client, "/auth/refresh", ["refreshToken": doctor.refresh])
            #expect(try Staff.problemCode(old) == "refresh-token-invalid")
            let again = try await Staff.signIn(client, "wang.jian", "Reset-Pass-2026")
            #expect(again.mustChange)
            #expect(try await Self.principal(again.access).roles.isEmpty)
        }
    }

    @Test func theLastAdminCannotBeDisabledOrDemotedNorAnAdminThemselves() async throws {
        try await Self.withDoctor { client, _, admin, doctorID in
            let adminID = try await Self.principal(admin).subject
            let own = try await Self.send(client, .post, "/admin/staff/\(adminID)/disable", token: admin)
            #expect(try Staff.problemCode(own) == "own-account")
            let demote = try await Self.send(
                client, .put, "/admin/staff/\(adminID)",
                ["displayName": "管理员", "roles": ["doctor"], "departmentIds": []],
                token: admin)
            #expect(try Staff.problemCode(demote) == "own-account")
            // The operator's tool acts as an admin too: it may not remove the last one either.
            let operatorToken = try await TestIdentity.token("operator:seed", roles: [.admin])
            let last = try await Self.send(client, .post, "/admin/staff/\(adminID)/disable", token: operatorToken)
            #expect(try Staff.problemCode(last) == "last-admin")
            // With a second admin, the first may go.
            let promoted = try await Self.send(
                client, .put, "/admin/staff/\(doctorID)",
                ["displayName": "王建", "roles": ["doctor", "admin"], "departmentIds": ["hematology"]], token: admin)
            #expect(promoted.status == .ok)
            let disabled = try await Self.send(client, .post, "/admin/staff/\(adminID)/disable", token: operatorToken)
            #expect(disabled.status == .ok)
        }
    }
}
