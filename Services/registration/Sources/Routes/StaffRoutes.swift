import Foundation
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit

/// Staff sign-in and password change (`/auth/staff/…`), and staff administration for admins (`/admin/staff`).
struct StaffRoutes {
    let directory: StaffDirectory
    let verifier: TokenVerifier

    struct SignInRequest: Decodable {
        var username: String
        var password: String
    }
    struct PasswordChange: Decodable {
        var currentPassword: String
        var newPassword: String
    }
    struct StaffList: ResponseEncodable {
        var staff: [StaffDirectory.StaffView]
    }

    func add(to router: Router<ServiceRequestContext>) {
        router.post("auth/staff/sign-in") { request, context in
            let body = try await request.decodeJSON(as: SignInRequest.self, context: context)
            return try await directory.signIn(
                username: body.username, password: body.password, context: context,
                clientAddress: AuthRoutes.clientAddress(request, context))
        }
        router.group("auth/staff/password").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .post { request, context in
                let principal = try context.requirePrincipal()
                let body = try await request.decodeJSON(as: PasswordChange.self, context: context)
                try await directory.changePassword(
                    of: principal, current: body.currentPassword, new: body.newPassword, context: context,
                    clientAddress: AuthRoutes.clientAddress(request, context))
                return Response(status: .noContent)
            }
        let admin = router.group("admin/staff").add(middleware: AuthenticationMiddleware(verifier: verifier))
        admin.get { _, context -> StaffList in
            _ = try context.requireRole(.admin)
            return StaffList(staff: try await directory.list())
        }
        admin.post { request, context in
            let principal = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: StaffDirectory.NewStaff.self, context: context)
            let created = try await directory.create(
                body, by: principal, context: context, clientAddress: AuthRoutes.clientAddress(request, context))
            return EditedResponse(status: .created, response: created)
        }
    }
}
