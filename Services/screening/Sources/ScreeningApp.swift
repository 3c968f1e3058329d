import Foundation
import Hummingbird
import Logging
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the screening service.
public func buildApplication(configuration: ScreeningConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    // Every request with a token is verified here again, whatever the edge checked: a process on the host can
    // reach this service directly.
    let verifier = await TokenVerifier(publicKeys: configuration.verificationKeys)
    return try ServiceApplication.makeDomainService(
        .screening,
        dataDirectory: configuration.dataDirectory,
        migrator: ScreeningMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: { database in buildRouter(database: database, verifier: verifier) }
    )
}

/// The screening router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase, verifier: TokenVerifier) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(
        database: database, openAPIDocument: ScreeningAPI.openAPIDocument, verifier: verifier)
}

/// Screening's published HTTP API.
public enum ScreeningAPI {
    /// The OpenAPI 3.1 document in `Services/screening/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
