import Foundation
import Hummingbird
import Logging
import YunzhenMessaging
import YunzhenQueue
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the registration service.
public func buildApplication(configuration: RegistrationConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    if configuration.operatorKey == nil {
        logger.warning("YUNZHEN_OPERATOR_KEY is not set: department writes are refused")
    }
    let warnings = HealthWarnings()
    return try ServiceApplication.makeDomainService(
        .registration,
        dataDirectory: configuration.dataDirectory,
        migrator: RegistrationMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        backgroundServices: { database in
            // The one writer of the registration topic; a second registration process fails here, naming the lock.
            let topic = try TopicWriter.open(
                directory: configuration.topicDirectory, topic: "registration", logger: logger)
            return [
                OutboxRelay(database: database.writer, writer: topic, logger: logger),
                RetentionService(
                    topic: "registration",
                    topicDirectory: configuration.topicDirectory,
                    policy: configuration.retention,
                    logger: logger,
                    onAlarm: { warnings.set("queue-retention", $0) }
                ),
            ]
        },
        router: { database in
            buildRouter(database: database, operatorKey: configuration.operatorKey, warnings: warnings)
        }
    )
}

/// The registration router over `database`; tests build it on an in-memory database.
public func buildRouter(
    database: ServiceDatabase,
    operatorKey: OperatorKey?,
    warnings: HealthWarnings = HealthWarnings()
) -> Router<ServiceRequestContext> {
    let router = ServiceApplication.makeDomainRouter(
        database: database,
        openAPIDocument: RegistrationAPI.openAPIDocument,
        warnings: warnings
    )
    DepartmentRoutes(store: SQLiteDepartmentStore(writer: database.writer), operatorKey: operatorKey).add(to: router)
    return router
}

/// Registration's published HTTP API.
public enum RegistrationAPI {
    /// The OpenAPI 3.1 document in `Services/registration/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
