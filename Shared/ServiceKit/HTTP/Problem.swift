import Foundation
import Hummingbird

/// An RFC 9457 problem: the one shape of every error answer. `code` is stable and documented, so a client can
/// act on it; `detail` tells a person what to fix.
public struct Problem: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// Stable, kebab-case: `not-found`, `invalid-body`, `service-unavailable`.
    public var code: String
    public var title: String
    public var detail: String
    /// Extra members of the problem object (e.g. `service` on an edge error).
    public var extensions: [String: String]

    public init(
        _ status: HTTPResponse.Status, code: String, title: String? = nil, detail: String,
        extensions: [String: String] = [:]
    ) {
        self.status = status
        self.code = code
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.extensions = extensions
    }

    public static func badRequest(_ detail: String, code: String = "bad-request") -> Problem {
        Problem(.badRequest, code: code, detail: detail)
    }

    public static func notFound(_ detail: String) -> Problem {
        Problem(.notFound, code: "not-found", detail: detail)
    }

    public static func unauthorized(_ detail: String) -> Problem {
        Problem(.unauthorized, code: "unauthorized", detail: detail)
    }

    public static func forbidden(_ detail: String) -> Problem {
        Problem(.forbidden, code: "forbidden", detail: detail)
    }

    /// The body of the problem response for the request known as `requestID`.
    public func document(requestID: String?) -> ProblemDocument {
        ProblemDocument(
            type: "urn:yunzhen:problem:\(code)",
            title: title,
            status: Int(status.code),
            detail: detail,
            code: code,
            requestId: requestID,
            extensions: extensions
        )
    }

    /// The problem as an HTTP response, with `Content-Type: application/problem+json`.
    public func response(requestID: String?) -> Response {
        let body = (try? ProblemDocument.encoder.encode(document(requestID: requestID))) ?? Data()
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if status == .unauthorized {
            headers[.wwwAuthenticate] = "Bearer"
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The JSON object of a problem response (RFC 9457 members plus `code` and `requestId`).
public struct ProblemDocument: Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var code: String
    public var requestId: String?
    public var extensions: [String: String]

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private static let standardMembers: Set<String> = ["type", "title", "status", "detail", "code", "requestId"]

    // Extensions are members of the problem object itself (RFC 9457 §3.2), not a nested object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(type, forKey: Key("type"))
        try container.encode(title, forKey: Key("title"))
        try container.encode(status, forKey: Key("status"))
        try container.encode(detail, forKey: Key("detail"))
        try container.encode(code, forKey: Key("code"))
        try container.encodeIfPresent(requestId, forKey: Key("requestId"))
        for (name, value) in extensions where !Self.standardMembers.contains(name) {
            try container.encode(value, forKey: Key(name))
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        type = try container.decode(String.self, forKey: Key("type"))
        title = try container.decode(String.self, forKey: Key("title"))
        status = try container.decode(Int.self, forKey: Key("status"))
        detail = try container.decode(String.self, forKey: Key("detail"))
        code = try container.decode(String.self, forKey: Key("code"))
        requestId = try container.decodeIfPresent(String.self, forKey: Key("requestId"))
        var extensions: [String: String] = [:]
        for key in container.allKeys where !Self.standardMembers.contains(key.stringValue) {
            if let value = try? container.decode(String.self, forKey: key) { extensions[key.stringValue] = value }
        }
        self.extensions = extensions
    }

    init(
        type: String, title: String, status: Int, detail: String, code: String, requestId: String?,
        extensions: [String: String]
    ) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.code = code
        self.requestId = requestId
        self.extensions = extensions
    }
}
