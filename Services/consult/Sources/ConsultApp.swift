import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the consult service.
public func buildApplication(configuration: ConsultConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    try ServiceApplication.makeDomainService(
        .consult,
        dataDirectory: configuration.dataDirectory,
        migrator: ConsultMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: buildRouter
    )
}

/// The consult router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(database: database, openAPIDocument: ConsultAPI.openAPIDocument)
}

/// Consult's published HTTP API.
public enum ConsultAPI {
    /// The OpenAPI 3.1 document in `Services/consult/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
