import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Forwards `/api/<service>/…` to the service over the callout client's kept-alive connections, after checking
/// the caller's access token where the route needs one (`EdgeAccess`) and limiting the sign-in endpoints.
struct EdgeProxy {
    let client: CalloutClient
    let upstreams: [ServiceName: String]
    let bodyLimit: Int
    let verifier: TokenVerifier
    let signInLimiter: SignInRateLimiter

    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    func add(to router: Router<ServiceRequestContext>) {
        for method in Self.methods {
            router.on("/api/{service}/**", method: method) { request, context in
                try await forward(request, context: context)
            }
        }
    }

    func forward(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let target: ProxyRules.Target
        do {
            target = try ProxyRules.target(forRawPath: request.head.path ?? request.uri.string)
        } catch {
            throw Self.problem(for: error, path: request.uri.path)
        }
        guard let base = upstreams[target.service] else {
            throw Problem.notFound("There is no service `\(target.service.rawValue)`.")
        }
        switch EdgeAccess.of(target, method: request.method) {
        case .open:
            break
        case .signIn:
            if let wait = signInLimiter.take(for: context.remoteIPAddress ?? "unknown") {
                throw Problem(
                    .tooManyRequests, code: "rate-limited",
                    detail: "Too many sign-in requests from your address; try again in \(wait) s.",
                    extensions: ["retryAfterSeconds": "\(wait)"])
            }
        case .signedIn:
            _ = try await AuthenticationMiddleware.authenticate(request, with: verifier)
        }
        let body = try await collectBody(of: request)
        let headers = ProxyRules.upstreamHeaders(
            from: request.headers.map { (name: $0.name.canonicalName, value: $0.value) },
            clientAddress: context.remoteIPAddress,
            scheme: "http",
            host: request.head.authority
        )
        let upstreamRequest = CalloutRequest(
            method: request.method.rawValue,
            url: base + target.pathAndQuery,
            headers: headers,
            body: body
        )
        let upstreamResponse: CalloutResponse
        do {
            upstreamResponse = try await client.execute(
                upstreamRequest, requestID: context.requestID, trace: context.trace)
        } catch {
            context.logger.warning(
                "upstream failed",
                metadata: ["service": "\(target.service.rawValue)", "error": "\(error)"]
            )
            throw Self.problem(for: error, service: target.service)
        }
        return response(from: upstreamResponse)
    }

    /// Reads the whole body, refusing one larger than the limit before reading it when its length is declared.
    private func collectBody(of request: Request) async throws -> [UInt8]? {
        let tooLarge = Problem(
            .contentTooLarge,
            code: "body-too-large",
            detail: "The request body is larger than the \(bodyLimit) bytes this server accepts."
        )
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > bodyLimit {
            throw tooLarge
        }
        let hasBody = request.headers[.contentLength].map { $0 != "0" } ?? (request.headers[.transferEncoding] != nil)
        guard hasBody else { return nil }
        do {
            let buffer = try await request.body.collect(upTo: bodyLimit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
    }

    private func response(from upstream: CalloutResponse) -> Response {
        var fields = HTTPFields()
        for header in ProxyRules.downstreamHeaders(from: upstream.headers) {
            if let name = HTTPField.Name(header.name) {
                fields.append(HTTPField(name: name, value: header.value))
            }
        }
        let status = HTTPResponse.Status(code: upstream.status)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: upstream.body)))
    }

    static func problem(for rejection: ProxyRules.Rejection, path: String) -> Problem {
        switch rejection {
        case .unknownService(let name):
            let known = ServiceName.allCases.map(\.rawValue).joined(separator: ", ")
            return .notFound("There is no service `\(name)`; the services are \(known).")
        case .unsafePath:
            return .badRequest(
                "The path \(path) has empty, `.` or `..` segments or encoded slashes; send a plain path.",
                code: "invalid-path")
        case .internalRoute:
            return .notFound("Nothing is at \(path).")
        }
    }

    static func problem(for error: CalloutError, service: ServiceName) -> Problem {
        let name = service.rawValue
        switch error {
        case .connectTimedOut, .timedOut:
            return Problem(
                .gatewayTimeout,
                code: "service-timeout",
                detail: "The \(name) service did not answer in time. Try again shortly.",
                extensions: ["service": name]
            )
        case .couldNotConnect, .shutDown:
            return Problem(
                .badGateway,
                code: "service-unavailable",
                detail: "The \(name) service is not reachable right now. Try again shortly.",
                extensions: ["service": name]
            )
        case .transport, .responseTooLarge, .invalidRequest, .cancelled:
            return Problem(
                .badGateway,
                code: "bad-gateway",
                detail: "The \(name) service gave no usable answer. Try again shortly.",
                extensions: ["service": name]
            )
        }
    }
}
