import Foundation
import Hummingbird
import Logging
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the reports service.
public func buildApplication(configuration: ReportsConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    try ServiceApplication.makeDomainService(
        .reports,
        dataDirectory: configuration.dataDirectory,
        migrator: ReportsMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: buildRouter
    )
}

/// The reports router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(database: database, openAPIDocument: ReportsAPI.openAPIDocument)
}

/// Reports's published HTTP API.
public enum ReportsAPI {
    /// The OpenAPI 3.1 document in `Services/reports/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
