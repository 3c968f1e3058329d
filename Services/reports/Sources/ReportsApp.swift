import Foundation
import Hummingbird
import Logging
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the reports service.
public func buildApplication(configuration: ReportsConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    // Every request with a token is verified here again, whatever the edge checked: a process on the host can
    // reach this service directly.
    let verifier = await TokenVerifier(publicKeys: configuration.verificationKeys)
    return try ServiceApplication.makeDomainService(
        .reports,
        dataDirectory: configuration.dataDirectory,
        migrator: ReportsMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: { database in buildRouter(database: database, verifier: verifier) }
    )
}

/// The reports router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase, verifier: TokenVerifier) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(
        database: database, openAPIDocument: ReportsAPI.openAPIDocument, verifier: verifier)
}

/// Reports's published HTTP API.
public enum ReportsAPI {
    /// The OpenAPI 3.1 document in `Services/reports/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
