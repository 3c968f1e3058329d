/// One HTTP exchange to make: method, absolute URL, headers and an optional body.
public struct CalloutRequest: Sendable {
    public var method: String
    /// Absolute `http://` or `https://` URL, query included.
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Overrides the client's connect timeout for this request.
    public var connectTimeout: Duration?
    /// Overrides the client's total timeout for this request.
    public var timeout: Duration?

    public init(
        method: String = "GET",
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil,
        connectTimeout: Duration? = nil,
        timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }
}

/// What the other side answered.
public struct CalloutResponse: Sendable {
    public var status: Int
    /// Response headers in the order received (names as the server spelled them).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// True when the exchange went over a connection kept from an earlier one.
    public var reusedConnection: Bool

    /// The first value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Why an exchange produced no response. Each case says what the caller can tell its own user.
public enum CalloutError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing accepted a connection (refused, unreachable, or the name did not resolve).
    case couldNotConnect(url: String, reason: String)
    /// The connection was not made within the connect timeout.
    case connectTimedOut(url: String, after: Duration)
    /// The whole exchange took longer than the total timeout.
    case timedOut(url: String, after: Duration)
    /// The connection broke or the peer answered something that is not HTTP.
    case transport(url: String, reason: String)
    /// The response body was larger than the client accepts.
    case responseTooLarge(url: String, limit: Int)
    /// The request itself is unusable (bad URL, unsupported scheme).
    case invalidRequest(reason: String)
    /// The caller's task was cancelled; the exchange was abandoned.
    case cancelled
    /// The client was shut down.
    case shutDown

    public var description: String {
        switch self {
        case .couldNotConnect(let url, let reason): "could not connect to \(url): \(reason)"
        case .connectTimedOut(let url, let after): "connecting to \(url) timed out after \(after)"
        case .timedOut(let url, let after): "request to \(url) timed out after \(after)"
        case .transport(let url, let reason): "request to \(url) failed: \(reason)"
        case .responseTooLarge(let url, let limit): "response from \(url) exceeded \(limit) bytes"
        case .invalidRequest(let reason): "invalid request: \(reason)"
        case .cancelled: "request cancelled"
        case .shutDown: "callout client is shut down"
        }
    }
}

/// Settings of one client.
public struct CalloutConfiguration: Sendable {
    public var connectTimeout: Duration
    public var timeout: Duration
    /// Largest response body accepted; a larger one fails with `responseTooLarge`.
    public var maximumResponseBytes: Int
    /// Connections kept open for reuse, across all hosts.
    public var maximumCachedConnections: Int
    /// Whether `http_proxy`-style environment variables apply. Off by default: calls between our own services
    /// on loopback must never be sent through a proxy configured for the host's outbound traffic.
    public var usesEnvironmentProxy: Bool

    public init(
        connectTimeout: Duration = .seconds(2),
        timeout: Duration = .seconds(30),
        maximumResponseBytes: Int = 64 * 1024 * 1024,
        maximumCachedConnections: Int = 256,
        usesEnvironmentProxy: Bool = false
    ) {
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maximumResponseBytes = maximumResponseBytes
        self.maximumCachedConnections = maximumCachedConnections
        self.usesEnvironmentProxy = usesEnvironmentProxy
    }
}

extension Duration {
    /// Whole milliseconds, at least 1 (libcurl reads 0 as "no timeout").
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
