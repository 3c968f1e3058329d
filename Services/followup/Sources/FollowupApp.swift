import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the followup service.
public func buildApplication(configuration: FollowupConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let database = try ServiceDatabase.open(
        directory: configuration.dataDirectory,
        name: "followup",
        migrator: FollowupMigrations.migrator,
        logger: logger
    )
    return ServiceApplication.make(
        name: "followup", router: buildRouter(database: database), settings: configuration.server, logger: logger)
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
