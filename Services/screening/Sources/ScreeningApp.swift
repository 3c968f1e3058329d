import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenQueue
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the screening service.
public func buildApplication(configuration: ScreeningConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    // Every request with a token is verified here again, whatever the edge checked: a process on the host can
    // reach this service directly.
    let verifier = await TokenVerifier(publicKeys: configuration.verificationKeys)
    let warnings = HealthWarnings()
    return try ServiceApplication.makeDomainService(
        .screening,
        dataDirectory: configuration.dataDirectory,
        migrator: ScreeningMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        backgroundServices: { database in
            // The one writer of the screening topic.
            let topic = try TopicWriter.open(
                directory: configuration.topicDirectory, topic: "screening", logger: logger)
            let screenings = Screenings(database: database.writer, opensBefore: configuration.opensBefore)
            return [
                OutboxRelay(database: database.writer, writer: topic, logger: logger),
                RetentionService(
                    topic: "screening", topicDirectory: configuration.topicDirectory, policy: configuration.retention,
                    logger: logger, onAlarm: { warnings.set("queue-retention", $0) }),
                // Registration's patients say who manages whom; its confirmed appointments open screenings, its
                // cancellations close them: exactly once, the consumer's position committed with the change. (Named
                // when it read appointments only: a new name would leave the old position holding the topic.)
                QueueConsumer(
                    name: "screening-appointments", topic: "registration",
                    topicDirectory: configuration.registrationTopicDirectory,
                    eventTypes: [
                        PatientRegistered.eventType, AppointmentConfirmed.eventType, AppointmentCancelled.eventType,
                    ],
                    database: database.writer, logger: logger,
                    handler: { event, db in try screenings.handle(event, in: db) }),
            ]
        },
        router: { database in
            buildRouter(
                database: database, verifier: verifier, opensBefore: configuration.opensBefore,
                singleEntry: configuration.singleEntry, warnings: warnings)
        }
    )
}

/// The screening router over `database`; tests build it on an in-memory database, with their own clock.
public func buildRouter(
    database: ServiceDatabase, verifier: TokenVerifier, opensBefore: TimeInterval = 24 * 3600,
    singleEntry: Bool = true, clock: @escaping @Sendable () -> Date = { Date() },
    warnings: HealthWarnings = HealthWarnings()
) -> Router<ServiceRequestContext> {
    let router = ServiceApplication.makeDomainRouter(
        database: database, openAPIDocument: ScreeningAPI.openAPIDocument, verifier: verifier, warnings: warnings)
    ScreeningRoutes(
        screenings: Screenings(database: database.writer, opensBefore: opensBefore),
        passes: EntryPasses(database: database.writer, singleEntry: singleEntry), verifier: verifier, clock: clock
    ).add(to: router)
    ArticleRoutes(articles: Articles(database: database.writer), verifier: verifier, clock: clock).add(to: router)
    EpidemicConsultationRoutes(
        database: database.writer,
        access: PatientAccess(database: database.writer, relationships: ScreeningRelationships()),
        verifier: verifier, clock: clock
    ).add(to: router)
    return router
}

/// Screening's published HTTP API.
public enum ScreeningAPI {
    /// The OpenAPI 3.1 document in `Services/screening/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
