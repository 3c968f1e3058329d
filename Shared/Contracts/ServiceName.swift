/// The five domain services behind the edge. The edge routes `/api/<rawValue>/…` to the service of that name.
public enum ServiceName: String, CaseIterable, Codable, Sendable {
    case registration
    case reports
    case consult
    case followup
    case screening

    /// The port the service listens on by default, on loopback (ARCHITECTURE.md §2).
    public var defaultPort: Int {
        switch self {
        case .registration: 8101
        case .reports: 8102
        case .consult: 8103
        case .followup: 8104
        case .screening: 8105
        }
    }

    /// Offset of this service's port from a base port (`yunzhen dev --service-port-base`).
    public var portOffset: Int { defaultPort - 8100 }

    /// The environment variable that tells the edge where this service listens.
    public var upstreamVariable: String { "YUNZHEN_UPSTREAM_\(rawValue.uppercased())" }
}

/// The edge's default public port.
public let defaultEdgePort = 8080
