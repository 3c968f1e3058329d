import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit

/// `/auth/…`: patients sign up and sign in with an SMS code, refresh and end their sessions. `/me`: the signed-in
/// patient's account.
struct AuthRoutes {
    let signIn: SignInService
    let verifier: TokenVerifier

    struct CodeRequest: Decodable { var phone: String }
    struct SignInRequest: Decodable {
        var phone: String
        var code: String
    }
    struct RefreshRequest: Decodable { var refreshToken: String }
    struct Account: ResponseEncodable {
        var id: String
        var phone: String
        var createdAt: Date
    }

    func add(to router: Router<ServiceRequestContext>) {
        let auth = router.group("auth")
        auth.post("sms-codes") { request, context in
            let body = try await request.decodeJSON(as: CodeRequest.self, context: context)
            let sent = try await signIn.sendCode(to: body.phone, clientAddress: context.clientAddress)
            return EditedResponse(status: .accepted, response: sent)
        }
        auth.post("sign-in") { request, context in
            let body = try await request.decodeJSON(as: SignInRequest.self, context: context)
            let session = try await signIn.signIn(
                phoneText: body.phone, code: body.code, context: context)
            return EditedResponse(status: session.created ? .created : .ok, response: session)
        }
        auth.post("refresh") { request, context in
            let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
            return try await signIn.refresh(body.refreshToken)
        }
        auth.post("sign-out") { request, context in
            let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
            try await signIn.signOut(body.refreshToken)
            return Response(status: .noContent)
        }
        router.group("me").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get { _, context -> Account in
                let principal = try context.requireRole(.patient)
                let database = signIn.database
                return try await database.write { db in
                    guard
                        let row = try Row.fetchOne(
                            db, sql: "SELECT id, phone, created_at FROM account WHERE id = ?",
                            arguments: [principal.subject])
                    else {
                        throw Problem.notFound("The account of this token no longer exists.")
                    }
                    try context.audit(principal).record(.read, "account", id: principal.subject, in: db)
                    let phone = MobileNumber(row["phone"])?.masked ?? "****"
                    return Account(id: row["id"], phone: phone, createdAt: row["created_at"])
                }
            }
    }
}

/// `GET /internal/sandbox-sms?phone=`: the messages the sandbox SMS gateway recorded for a number, for developers
/// and the end-to-end tests. Loopback peers only, and only where the sandbox gateway is configured (never in
/// production).
struct SandboxSMSRoutes {
    let gateway: SandboxSMSGateway

    struct Messages: ResponseEncodable {
        var messages: [SandboxSMSGateway.Recorded]
    }

    func add(to router: Router<ServiceRequestContext>) {
        router.get("internal/sandbox-sms") { request, context in
            guard context.isFromLoopback else { throw Problem.notFound("No such route.") }
            guard let phone = request.uri.queryParameters["phone"].flatMap({ MobileNumber(String($0)) }) else {
                throw Problem.badRequest("`phone` must be a mainland mobile number.")
            }
            return Messages(messages: gateway.messages(to: phone.digits))
        }
    }
}
