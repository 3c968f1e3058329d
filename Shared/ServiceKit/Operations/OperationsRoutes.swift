import Hummingbird
import Synchronization

/// The routes every process answers for operators and the edge: liveness, readiness, metrics and the OpenAPI
/// document. The edge never forwards these from the public (see `EdgeRouting`).
public enum OperationsRoutes {
    /// Adds `/health/live`, `/health/ready`, `/metrics` and `/openapi.yaml` to `router`.
    /// - Parameter readiness: true when the process can serve (for a service: its database is open and migrated).
    public static func add(
        to router: Router<ServiceRequestContext>,
        openAPIDocument: [UInt8],
        warnings: HealthWarnings = HealthWarnings(),
        readiness: @escaping @Sendable () async -> Bool
    ) {
        router.get("/health/live") { _, _ in
            HealthStatus(status: "live")
        }
        router.get("/health/ready") { _, _ in
            guard await readiness() else {
                throw Problem(
                    .serviceUnavailable, code: "not-ready",
                    detail: "The service is starting or its database is unavailable.")
            }
            let current = warnings.current
            return HealthStatus(status: "ready", warnings: current.isEmpty ? nil : current)
        }
        router.get("/metrics") { _, context in
            // Metrics describe the host's traffic; they are for a scraper on this host, never for the public, even
            // when a process is (mis)configured to listen on a public address.
            if !context.isFromLoopback {
                throw Problem.notFound("Nothing is at GET /metrics.")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: ServiceMetrics.exposition()))
            )
        }
        let document = ByteBuffer(bytes: openAPIDocument)
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: document)
            )
        }
    }
}

/// The body of `/health/live` and `/health/ready`.
public struct HealthStatus: ResponseCodable, Equatable {
    public var status: String
    /// Conditions an operator must look at that do not stop the process from serving (e.g. a queue alarm).
    public var warnings: [String]?

    public init(status: String, warnings: [String]? = nil) {
        self.status = status
        self.warnings = warnings
    }
}

/// Warnings a process's parts raise for `/health/ready`, each under its own key, cleared by setting nil.
public final class HealthWarnings: Sendable {
    private let storage = Mutex<[String: String]>([:])

    public init() {}

    public func set(_ key: String, _ warning: String?) {
        storage.withLock { $0[key] = warning }
    }

    public var current: [String] {
        storage.withLock { warnings in warnings.keys.sorted().compactMap { warnings[$0] } }
    }
}
