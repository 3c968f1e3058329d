import Hummingbird
import Logging

/// One info line per request, after it is answered: method, path, status and duration, with the request id and
/// trace id the logger already carries. Never the query string or the body, which may hold patient data.
public struct AccessLogMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: ServiceRequestContext,
        next: (Request, ServiceRequestContext) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        if context.logger.logLevel <= .info {
            let elapsed = ContinuousClock.now - started
            context.logger.info(
                "request",
                metadata: [
                    "method": .string(request.method.rawValue),
                    "path": .string(request.uri.path),
                    "status": .stringConvertible(response.status.code),
                    "duration_ms": .stringConvertible((elapsed / .microseconds(1)).rounded() / 1000),
                ]
            )
        }
        return response
    }
}
