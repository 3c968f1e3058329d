import Foundation
import Hummingbird
import Logging
import NIOCore

/// Turns every error into a problem response. Expected errors (a `Problem`, Hummingbird's `HTTPError`, a body
/// that does not decode, a body over the limit) tell the caller what to fix; anything else is logged once at
/// error level with the request id and answered with a 500 that carries no internals.
public struct ProblemMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: ServiceRequestContext,
        next: (Request, ServiceRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, request: request)
            if problem.status == .internalServerError {
                context.logger.error(
                    "unexpected error",
                    metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"]
                )
            }
            return problem.response(requestID: context.requestID.isEmpty ? nil : context.requestID)
        }
    }

    static func problem(for error: any Error, request: Request) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as DecodingError:
            return .badRequest(describe(error), code: "invalid-body")
        case is NIOTooManyBytesError:
            return Problem(
                .contentTooLarge, code: "body-too-large",
                detail: "The request body is larger than this endpoint accepts.")
        case let error as HTTPError:
            return problem(for: error, request: request)
        case let error as any HTTPResponseError where error.status.code < 500:
            return Problem(error.status, code: code(for: error.status), detail: error.status.reasonPhrase)
        default:
            return Problem(
                .internalServerError,
                code: "internal-error",
                detail: "Something went wrong on our side. Quote the request id when you report it."
            )
        }
    }

    private static func problem(for error: HTTPError, request: Request) -> Problem {
        switch error.status {
        case .notFound:
            return .notFound(error.body ?? "Nothing is at \(request.method) \(request.uri.path).")
        case .methodNotAllowed:
            return Problem(
                .methodNotAllowed, code: "method-not-allowed",
                detail: "\(request.uri.path) does not accept \(request.method).")
        default:
            let detail = error.body ?? error.status.reasonPhrase
            let status = error.status.code >= 500 ? HTTPResponse.Status.internalServerError : error.status
            return Problem(
                status, code: code(for: status),
                detail: status == .internalServerError ? "Something went wrong on our side." : detail)
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        status.reasonPhrase.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(separator: "-")
    }

    /// Says which field is wrong and how, in words a client developer can act on.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty
                ? "the body"
                : "`" + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "`"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "The field \(path(context.codingPath + [key])) is required."
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath).capitalizedFirst) must be \(describe(type))."
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath).capitalizedFirst) must be \(describe(type)), not null."
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "The body is not valid JSON."
            }
            return "\(path(context.codingPath).capitalizedFirst) is invalid: \(context.debugDescription)"
        @unknown default:
            return "The body could not be read."
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "a whole number"
        case is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "true or false"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
