import Foundation
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit

/// `/admin/integrators` (admins) and `/auth/integrator/token` (an integrator with its API key).
struct IntegratorRoutes {
    let directory: IntegratorDirectory
    let verifier: TokenVerifier

    struct NewIntegrator: Decodable {
        var name: String
        var eventTypes: [String]
    }
    struct NewKey: Decodable { var eventTypes: [String] }
    struct IntegratorList: ResponseEncodable { var integrators: [IntegratorDirectory.IntegratorView] }

    func add(to router: Router<ServiceRequestContext>) {
        router.post("auth/integrator/token") { request, _ in
            guard let header = request.headers[.authorization], header.hasPrefix("ApiKey ") else {
                throw Problem(
                    .unauthorized, code: "invalid-api-key", detail: "Send the key as `Authorization: ApiKey yzk_…`.")
            }
            return try await directory.token(for: String(header.dropFirst("ApiKey ".count)))
        }
        let admin = router.group("admin/integrators").add(middleware: AuthenticationMiddleware(verifier: verifier))
        admin.get { _, context -> IntegratorList in
            _ = try context.requireRole(.admin)
            return IntegratorList(integrators: try await directory.list())
        }
        admin.post { request, context in
            let principal = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: NewIntegrator.self, context: context)
            let made = try await directory.create(
                name: body.name, eventTypes: body.eventTypes, audit: context.audit(principal))
            return EditedResponse(status: .created, response: made)
        }
        admin.post("{id}/keys") { request, context in
            let principal = try context.requireRole(.admin)
            let body = try await request.decodeJSON(as: NewKey.self, context: context)
            let made = try await directory.addKey(
                to: try context.parameters.require("id"), eventTypes: body.eventTypes, audit: context.audit(principal))
            return EditedResponse(status: .created, response: made)
        }
        admin.delete("{id}/keys/{key}") { _, context in
            let principal = try context.requireRole(.admin)
            try await directory.revoke(
                key: try context.parameters.require("key"), of: try context.parameters.require("id"),
                audit: context.audit(principal))
            return Response(status: .noContent)
        }
    }
}
