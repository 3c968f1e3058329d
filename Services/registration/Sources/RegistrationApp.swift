import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the registration service.
public func buildApplication(configuration: RegistrationConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let database = try ServiceDatabase.open(
        directory: configuration.dataDirectory,
        name: "registration",
        migrator: RegistrationMigrations.migrator,
        logger: logger
    )
    if configuration.operatorKey == nil {
        logger.warning("YUNZHEN_OPERATOR_KEY is not set: department writes are refused")
    }
    let router = buildRouter(database: database, operatorKey: configuration.operatorKey)
    return ServiceApplication.make(name: "registration", router: router, settings: configuration.server, logger: logger)
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
