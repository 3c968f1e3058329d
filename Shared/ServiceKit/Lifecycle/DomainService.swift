import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenContracts
import YunzhenIdentity
import YunzhenStorage

/// Where a domain service keeps its files: `<YUNZHEN_DATA>/<service>/`.
public enum DataRoot {
    public static func directory(for service: ServiceName, environment: EnvironmentReader) throws(ConfigurationError)
        -> URL
    {
        let root = try environment.directory("YUNZHEN_DATA", "the data root folder, e.g. /var/lib/yunzhen")
        return root.appendingPathComponent(service.rawValue, isDirectory: true)
    }

    /// Where the topic `service` writes lives: `<YUNZHEN_DATA>/queue/<service>/`.
    public static func topicDirectory(for service: ServiceName, environment: EnvironmentReader)
        throws(ConfigurationError) -> URL
    {
        let root = try environment.directory("YUNZHEN_DATA", "the data root folder, e.g. /var/lib/yunzhen")
        return root.appendingPathComponent("queue", isDirectory: true).appendingPathComponent(
            service.rawValue, isDirectory: true)
    }
}

extension ServiceApplication {
    /// The router a domain service starts from: the kit's middleware and operations routes, ready when its
    /// database is open and migrated, and the admins' audit-trail routes (every service keeps a trail, verified
    /// with `verifier`). The service adds its own routes to it.
    public static func makeDomainRouter(
        database: ServiceDatabase,
        openAPIDocument: [UInt8],
        verifier: TokenVerifier,
        warnings: HealthWarnings = HealthWarnings()
    ) -> Router<ServiceRequestContext> {
        let router = makeRouter()
        OperationsRoutes.add(to: router, openAPIDocument: openAPIDocument, warnings: warnings) {
            await database.isReady()
        }
        AuditRoutes.add(to: router, database: database, verifier: verifier)
        return router
    }

    /// A domain service's application: opens `<dataDirectory>/<service>.sqlite`, runs its migrator, and serves
    /// the router built over that database.
    public static func makeDomainService(
        _ service: ServiceName,
        dataDirectory: URL,
        migrator: DatabaseMigrator,
        settings: ServerSettings,
        logger: Logger,
        backgroundServices: (ServiceDatabase) throws -> [any Service] = { _ in [] },
        router: (ServiceDatabase) -> Router<ServiceRequestContext>
    ) throws -> some ApplicationProtocol {
        let database = try ServiceDatabase.open(
            directory: dataDirectory,
            name: service.rawValue,
            migrator: migrator,
            logger: logger
        )
        return make(
            name: service.rawValue,
            router: router(database),
            settings: settings,
            services: try backgroundServices(database),
            logger: logger
        )
    }
}
