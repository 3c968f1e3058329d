import Hummingbird
import NIOCore
import YunzhenCallout
import YunzhenIdentity

/// The request context of every yunzhen process: Hummingbird's core storage plus the request id, the W3C trace
/// and the peer address, set by `RequestIDMiddleware` before any route runs.
public struct ServiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The id this request is known by in every log line and every hop (`X-Request-ID`).
    public var requestID: String
    /// This hop's span of the request's trace.
    public var trace: TraceContext
    /// The TCP peer; for the edge this is the client, for a service it is the edge.
    public let remoteAddress: SocketAddress?
    /// Who is calling, once `AuthenticationMiddleware` has verified their access token; nil on public routes.
    public var principal: Principal?
    /// The address of the client the request came from, for rate limits and the audit trail: for a service behind
    /// the edge, the edge's `X-Forwarded-For` (which replaces what the client claimed); for anyone else, the peer.
    /// Set by `RequestIDMiddleware`.
    public var clientAddress: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.trace = TraceContext.newTrace()
        self.remoteAddress = source.channel.remoteAddress
        self.principal = nil
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// JSON API bodies of the services; the edge enforces its own, larger limit for uploads.
    public var maxUploadSize: Int { 2 * 1024 * 1024 }

    /// The peer's IP address as text (`127.0.0.1`, `::1`), when it has one.
    public var remoteIPAddress: String? {
        remoteAddress?.ipAddress
    }

    /// Whether the peer is on this host: internal routes answer only such peers.
    public var isFromLoopback: Bool {
        guard let ip = remoteIPAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
