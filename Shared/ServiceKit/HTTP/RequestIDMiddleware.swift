import HTTPTypes
import Hummingbird
import Logging
import YunzhenCallout

/// Gives every request an id and a trace span: the caller's `X-Request-ID` when it is well-formed, a new one
/// otherwise; puts both on the request's logger so every line carries them; and returns the id to the caller.
/// It also settles the client's address (`ServiceRequestContext.clientAddress`).
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: ServiceRequestContext,
        next: (Request, ServiceRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.trace = TraceContext.continuing(traceparent: request.headers[.traceparent])
        // Without an id from the caller, the trace id serves: it is already unique and random.
        let requestID = request.headers[.requestID].flatMap(Self.accepted) ?? context.trace.traceID
        context.requestID = requestID
        // Only a peer on this host (the edge) may say who the client is; anyone else is judged by their own
        // address, so a process that bypasses the edge cannot spread its requests over invented addresses.
        if context.isFromLoopback,
            let forwarded = request.headers[.forwardedFor]?.split(separator: ",").first?
                .trimmingCharacters(in: .whitespaces),
            !forwarded.isEmpty
        {
            context.clientAddress = forwarded
        }
        context.logger[metadataKey: "request_id"] = .string(requestID)
        context.logger[metadataKey: "trace_id"] = .string(context.trace.traceID)
        context.logger[metadataKey: "hb.request.id"] = nil
        var response = try await next(request, context)
        response.headers[.requestID] = requestID
        return response
    }

    /// A caller's id is kept when it is 1–128 characters of `[A-Za-z0-9._:-]`, so it is safe in logs and headers.
    static func accepted(_ candidate: String) -> String? {
        guard (1...128).contains(candidate.utf8.count),
            candidate.utf8.allSatisfy({ byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
                    || byte == UInt8(ascii: "-")
            })
        else { return nil }
        return candidate
    }
}

extension HTTPField.Name {
    public static let requestID = HTTPField.Name("X-Request-ID")!
    public static let traceparent = HTTPField.Name("traceparent")!
    public static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}
