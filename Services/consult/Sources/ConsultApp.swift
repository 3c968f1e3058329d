import Foundation
import Hummingbird
import Logging
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the consult service.
public func buildApplication(configuration: ConsultConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    // Every request with a token is verified here again, whatever the edge checked: a process on the host can
    // reach this service directly.
    let verifier = await TokenVerifier(publicKeys: configuration.verificationKeys)
    return try ServiceApplication.makeDomainService(
        .consult,
        dataDirectory: configuration.dataDirectory,
        migrator: ConsultMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        router: { database in buildRouter(database: database, verifier: verifier) }
    )
}

/// The consult router over `database`; tests build it on an in-memory database.
public func buildRouter(database: ServiceDatabase, verifier: TokenVerifier) -> Router<ServiceRequestContext> {
    ServiceApplication.makeDomainRouter(
        database: database, openAPIDocument: ConsultAPI.openAPIDocument, verifier: verifier)
}

/// Consult's published HTTP API.
public enum ConsultAPI {
    /// The OpenAPI 3.1 document in `Services/consult/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
