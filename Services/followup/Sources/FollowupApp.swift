import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the followup service.
public func buildApplication(configuration: FollowupConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    try ServiceApplication.makeDomainService(
        .followup,
        dataDirectory: configuration.dataDirectory,
        migrator: FollowupMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: buildRouter
    )
}

/// The followup router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(database: database, openAPIDocument: FollowupAPI.openAPIDocument)
}

/// Followup's published HTTP API.
public enum FollowupAPI {
    /// The OpenAPI 3.1 document in `Services/followup/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
