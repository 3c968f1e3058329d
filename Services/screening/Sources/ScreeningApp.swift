import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the screening service.
public func buildApplication(configuration: ScreeningConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    try ServiceApplication.makeDomainService(
        .screening,
        dataDirectory: configuration.dataDirectory,
        migrator: ScreeningMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: buildRouter
    )
}

/// The screening router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(database: database, openAPIDocument: ScreeningAPI.openAPIDocument)
}

/// Screening's published HTTP API.
public enum ScreeningAPI {
    /// The OpenAPI 3.1 document in `Services/screening/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
