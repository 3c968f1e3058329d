import Hummingbird
import YunzhenIdentity

/// Verifies the caller's access token (`Authorization: Bearer <jwt>`) and puts the `Principal` in the context,
/// for the routes it guards: without a valid token they answer 401 before any handler runs. Each service runs it
/// itself, whatever the edge checked, since a process on the host can reach a service directly.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let verifier: TokenVerifier
    /// When false, a request without an Authorization header goes on anonymous (public pages that show more to
    /// staff); a header that is there must still be a valid token.
    let required: Bool

    public init(verifier: TokenVerifier, required: Bool = true) {
        self.verifier = verifier
        self.required = required
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        if required || request.headers[.authorization] != nil {
            context.principal = try await Self.authenticate(request, with: verifier)
        }
        return try await next(request, context)
    }

    /// The principal of `request`'s bearer token, or a 401 problem saying what is wrong with it.
    public static func authenticate(_ request: Request, with verifier: TokenVerifier) async throws(Problem)
        -> Principal
    {
        guard let header = request.headers[.authorization] else {
            throw Problem(
                .unauthorized, code: "authentication-required",
                detail: "Sign in first: send `Authorization: Bearer <access token>`.")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw Problem(
                .unauthorized, code: "invalid-token",
                detail: "The Authorization header must be `Bearer <access token>`.")
        }
        do {
            return try await verifier.verify(String(header.dropFirst(7)))
        } catch .expired {
            throw Problem(
                .unauthorized, code: "token-expired",
                detail: "The access token has expired: get a new one with your refresh token and try again.")
        } catch {
            throw Problem(.unauthorized, code: "invalid-token", detail: "The \(error). Sign in again.")
        }
    }
}

extension ServiceRequestContext {
    /// The verified caller; 401 on a route that `AuthenticationMiddleware` does not guard.
    public func requirePrincipal() throws(Problem) -> Principal {
        guard let principal else {
            throw Problem(
                .unauthorized, code: "authentication-required",
                detail: "Sign in first: send `Authorization: Bearer <access token>`.")
        }
        return principal
    }

    /// The verified caller if they hold one of `roles`; 403 naming the roles otherwise.
    public func requireRole(_ roles: Role...) throws(Problem) -> Principal {
        let principal = try requirePrincipal()
        guard roles.contains(where: principal.has) else {
            throw Problem(
                .forbidden, code: "role-required",
                detail: "This needs the role \(roles.map(\.rawValue).joined(separator: " or ")).")
        }
        return principal
    }
}
