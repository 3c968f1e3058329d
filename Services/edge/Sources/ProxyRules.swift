import Foundation
import YunzhenContracts

/// The edge's rules for what may pass from the public to a service and back. Pure functions, so every rule is
/// tested without a socket.
enum ProxyRules {
    /// Where a public request goes: the service and the path-and-query to ask it for.
    struct Target: Equatable {
        let service: ServiceName
        let pathAndQuery: String
    }

    enum Rejection: Error, Equatable {
        /// `/api/<name>` names no service.
        case unknownService(String)
        /// The path tries to leave its service's space (dot segments, encoded slashes, empty segments).
        case unsafePath
        /// The path names a service's operations route, which the public never reaches.
        case internalRoute
    }

    /// First path segments of a service that only operators reach, on the service's own port.
    static let internalRoots: Set<String> = ["metrics", "health", "internal"]

    /// Maps a raw request target (`/api/registration/departments?x=1`, as received, still percent-encoded).
    static func target(forRawPath rawTarget: String) throws(Rejection) -> Target {
        let queryStart = rawTarget.firstIndex(of: "?") ?? rawTarget.endIndex
        let path = rawTarget[..<queryStart]
        let query = rawTarget[queryStart...]
        guard path.hasPrefix("/api/") else { throw .unsafePath }
        let segments = path.dropFirst("/api/".count).split(separator: "/", omittingEmptySubsequences: false)
        guard let serviceSegment = segments.first, let service = ServiceName(rawValue: String(serviceSegment)) else {
            throw .unknownService(String(segments.first ?? ""))
        }
        let rest = segments.dropFirst()
        for (index, segment) in rest.enumerated() {
            // A trailing slash is harmless; any other empty segment (`a//b`) is not a path a client builds.
            if segment.isEmpty && index != rest.count - 1 { throw .unsafePath }
            try checkSegment(segment, isFirst: index == 0)
        }
        return Target(service: service, pathAndQuery: "/" + rest.joined(separator: "/") + query)
    }

    /// Refuses dot segments, encoded separators and control characters, decoding only segments that contain
    /// `%` (most do not, and this runs for every request).
    private static func checkSegment(_ segment: Substring, isFirst: Bool) throws(Rejection) {
        var decoded = segment
        if segment.utf8.contains(UInt8(ascii: "%")) {
            guard let text = String(segment).removingPercentEncoding else { throw .unsafePath }
            decoded = Substring(text)
        }
        if decoded == "." || decoded == ".."
            || decoded.utf8.contains(where: {
                $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\")
            })
        {
            throw .unsafePath
        }
        if isFirst, internalRoots.contains(decoded.lowercased()) { throw .internalRoute }
    }

    /// Hop-by-hop headers (RFC 9110 §7.6.1) end at the edge, in both directions.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade",
    ]

    /// Headers the edge sets itself rather than passing on what the client claimed.
    static let setByEdge: Set<String> = [
        "host", "content-length", "x-request-id", "traceparent", "x-forwarded-for",
        "x-forwarded-proto", "x-forwarded-host", "forwarded", "expect",
    ]

    /// The names a `Connection` header lists, which are hop-by-hop for this message too.
    static func connectionListed(_ headers: [(name: String, value: String)]) -> Set<String> {
        var names: Set<String> = []
        for header in headers where header.name.lowercased() == "connection" {
            for token in header.value.split(separator: ",") {
                names.insert(token.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        return names
    }

    /// The headers to send to the service: the client's end-to-end headers plus who the client is.
    /// `X-Forwarded-For` is replaced, not appended to: the edge is the only public listener, so what a client
    /// claims about earlier hops cannot be trusted.
    static func upstreamHeaders(
        from clientHeaders: [(name: String, value: String)],
        clientAddress: String?,
        scheme: String,
        host: String?
    ) -> [(name: String, value: String)] {
        let listed = connectionListed(clientHeaders)
        var headers = clientHeaders.filter { header in
            let name = header.name.lowercased()
            return !hopByHop.contains(name) && !setByEdge.contains(name) && !listed.contains(name)
        }
        if let clientAddress { headers.append((name: "X-Forwarded-For", value: clientAddress)) }
        headers.append((name: "X-Forwarded-Proto", value: scheme))
        if let host { headers.append((name: "X-Forwarded-Host", value: host)) }
        return headers
    }

    /// The headers to return to the client: the service's end-to-end headers. Framing is the edge's own.
    static func downstreamHeaders(from upstreamHeaders: [(name: String, value: String)]) -> [(
        name: String, value: String
    )] {
        let listed = connectionListed(upstreamHeaders)
        return upstreamHeaders.filter { header in
            let name = header.name.lowercased()
            return !hopByHop.contains(name) && !listed.contains(name) && name != "content-length"
                && name != "x-request-id" && name != "date" && name != "server"
        }
    }
}
