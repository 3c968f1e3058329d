import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the registration service.
public func buildApplication(configuration: RegistrationConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    if configuration.operatorKey == nil {
        logger.warning("YUNZHEN_OPERATOR_KEY is not set: department writes are refused")
    }
    return try ServiceApplication.makeDomainService(
        .registration,
        dataDirectory: configuration.dataDirectory,
        migrator: RegistrationMigrations.migrator,
        settings: configuration.server,
        logger: logger
    ) { database in
        buildRouter(database: database, operatorKey: configuration.operatorKey)
    }
}

/// The registration router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase, operatorKey: OperatorKey?) -> Router<ServiceRequestContext> {
    let router = ServiceApplication.makeDomainRouter(
        database: database, openAPIDocument: RegistrationAPI.openAPIDocument)
    DepartmentRoutes(store: SQLiteDepartmentStore(writer: database.writer), operatorKey: operatorKey).add(to: router)
    return router
}

/// Registration's published HTTP API.
public enum RegistrationAPI {
    /// The OpenAPI 3.1 document in `Services/registration/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
