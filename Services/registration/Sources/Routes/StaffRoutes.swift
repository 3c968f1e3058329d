import Foundation
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit

/// Staff sign-in and password change (`/auth/staff/…`), and for admins the staff accounts (`/admin/staff`) and the
/// departments' teams (`/admin/teams`).
struct StaffRoutes {
    let directory: StaffDirectory
    let administration: StaffAdministration
    let verifier: TokenVerifier

    struct SignInRequest: Decodable {
        var username: String
        var password: String
    }
    struct PasswordChange: Decodable {
        var currentPassword: String
        var newPassword: String
    }
    struct PasswordReset: Decodable {
        var temporaryPassword: String
    }
    struct StaffList: ResponseEncodable {
        var staff: [StaffAdministration.StaffView]
    }
    struct TeamList: ResponseEncodable {
        var teams: [StaffAdministration.TeamView]
    }

    func add(to router: Router<ServiceRequestContext>) {
        router.post("auth/staff/sign-in") { request, context in
            let body = try await request.decodeJSON(as: SignInRequest.self, context: context)
            return try await directory.signIn(username: body.username, password: body.password, context: context)
        }
        router.group("auth/staff/password").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .post { request, context in
                let principal = try context.requirePrincipal()
                let body = try await request.decodeJSON(as: PasswordChange.self, context: context)
                try await directory.changePassword(
                    of: principal, current: body.currentPassword, new: body.newPassword, context: context)
                return Response(status: .noContent)
            }

        let staff = router.group("admin/staff").add(middleware: AuthenticationMiddleware(verifier: verifier))
        staff.get { _, context -> StaffList in
            _ = try context.requireRole(.admin)
            return StaffList(staff: try await administration.list())
        }
        staff.post { request, context in
            let admin = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: StaffAdministration.NewStaff.self, context: context)
            let created = try await administration.create(body, audit: context.audit(admin))
            return EditedResponse(status: .created, response: created)
        }
        staff.get("{id}") { _, context -> StaffAdministration.StaffView in
            _ = try context.requireRole(.admin)
            return try await administration.get(try context.parameters.require("id"))
        }
        staff.put("{id}") { request, context -> StaffAdministration.StaffView in
            let admin = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: StaffAdministration.StaffUpdate.self, context: context)
            return try await administration.update(
                try context.parameters.require("id"), body, audit: context.audit(admin))
        }
        for (action, disabled) in [("disable", true), ("enable", false)] {
            staff.post("{id}/\(action)") { _, context -> StaffAdministration.StaffView in
                let admin = try context.requireRole(.admin)
                return try await administration.setDisabled(
                    disabled, try context.parameters.require("id"), audit: context.audit(admin))
            }
        }
        staff.post("{id}/password-reset") { request, context -> StaffAdministration.StaffView in
            let admin = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: PasswordReset.self, context: context)
            return try await administration.resetPassword(
                try context.parameters.require("id"), temporaryPassword: body.temporaryPassword,
                audit: context.audit(admin))
        }

        let teams = router.group("admin/teams").add(middleware: AuthenticationMiddleware(verifier: verifier))
        teams.get { request, context -> TeamList in
            _ = try context.requireRole(.admin)
            return TeamList(
                teams: try await administration.teams(
                    department: request.uri.queryParameters["department"].map(String.init)))
        }
        teams.post { request, context in
            let admin = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: StaffAdministration.NewTeam.self, context: context)
            let created = try await administration.createTeam(body, audit: context.audit(admin))
            return EditedResponse(status: .created, response: created)
        }
        teams.get("{id}") { _, context -> StaffAdministration.TeamView in
            _ = try context.requireRole(.admin)
            return try await administration.team(try context.parameters.require("id"))
        }
        teams.put("{id}/members/{staff}") { _, context -> StaffAdministration.TeamView in
            let admin = try context.requireRole(.admin)
            return try await administration.addMember(
                try context.parameters.require("staff"), to: try context.parameters.require("id"),
                audit: context.audit(admin))
        }
        teams.delete("{id}/members/{staff}") { _, context -> StaffAdministration.TeamView in
            let admin = try context.requireRole(.admin)
            return try await administration.removeMember(
                try context.parameters.require("staff"), from: try context.parameters.require("id"),
                audit: context.audit(admin))
        }
    }
}
