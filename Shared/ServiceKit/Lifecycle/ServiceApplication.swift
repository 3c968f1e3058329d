import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the routers and applications of all six processes the same way.
public enum ServiceApplication {
    /// A router with the kit's middleware in order: request id (outermost, so even errors carry it), the access
    /// log and per-route metrics (outside the problem answers, so they record the status the caller really got),
    /// then problem answers for every error.
    public static func makeRouter() -> Router<ServiceRequestContext> {
        _ = ServiceMetrics.registry
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ProblemMiddleware())
        return router
    }

    /// The application that serves `router`: tells systemd when it listens and when it stops, and runs `services`
    /// (relays, consumers, clients) alongside the server, all stopped gracefully on SIGTERM.
    public static func make(
        name: String,
        router: Router<ServiceRequestContext>,
        settings: ServerSettings,
        services: [any Service] = [],
        logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            services: services,
            onServerRunning: { channel in
                // Hummingbird has logged the address; systemd learns the process is ready.
                SystemdNotifier.notify(
                    "READY=1\nSTATUS=listening on port \(channel.localAddress?.port ?? settings.port)")
            },
            logger: logger
        )
    }
}
