import Crypto
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenCallout
import YunzhenIdentity
import YunzhenMessaging
import YunzhenQueue
import YunzhenServiceKit
import YunzhenStorage

/// Composition root of the registration service.
public func buildApplication(configuration: RegistrationConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let warnings = HealthWarnings()
    let identity = await RegistrationIdentity.make(configuration: configuration, logger: logger)
    let booking = try BookingSetup.make(
        configuration: configuration, client: CalloutClient(logger: logger), logger: logger)
    return try ServiceApplication.makeDomainService(
        .registration,
        dataDirectory: configuration.dataDirectory,
        migrator: RegistrationMigrations.migrator,
        settings: configuration.server,
        logger: logger,
        backgroundServices: { database in
            // The one writer of the registration topic; a second registration process fails here, naming the lock.
            let topic = try TopicWriter.open(
                directory: configuration.topicDirectory, topic: "registration", logger: logger)
            let appointments = Appointments(
                database: database.writer, policy: booking.policy, gateway: booking.gateway.name)
            var services: [any Service] = [
                OutboxRelay(database: database.writer, writer: topic, logger: logger),
                BookingWorker(
                    ledger: PaymentLedger(
                        database: database.writer, gateway: booking.gateway, appointments: appointments,
                        logger: logger, reconcileAfter: booking.policy.reconcileAfter),
                    interval: .seconds(1)),
                RetentionService(
                    topic: "registration",
                    topicDirectory: configuration.topicDirectory,
                    policy: configuration.retention,
                    logger: logger,
                    onAlarm: { warnings.set("queue-retention", $0) }
                ),
            ]
            // The first admin, if there is none yet: here because this is the first moment the database is open,
            // before the server listens, so the account exists by the time the service reports ready.
            if let password = configuration.bootstrapAdminPassword {
                if try identity.staffAdministration(database: database).bootstrapAdmin(password: password) {
                    logger.notice(
                        "created the first admin account `admin`; it must choose a new password at first sign-in")
                }
            }
            if let sandbox = booking.sandbox { services.append(sandbox) }
            return services
        },
        router: { database in
            buildRouter(database: database, identity: identity, booking: booking, warnings: warnings)
        }
    )
}

/// The registration router over `database`; tests build it on an in-memory database.
public func buildRouter(
    database: ServiceDatabase,
    identity: RegistrationIdentity,
    booking: BookingSetup = .unreachableGateway(),
    warnings: HealthWarnings = HealthWarnings()
) -> Router<ServiceRequestContext> {
    let router = ServiceApplication.makeDomainRouter(
        database: database,
        openAPIDocument: RegistrationAPI.openAPIDocument,
        verifier: identity.verifier,
        warnings: warnings
    )
    DepartmentRoutes(store: SQLiteDepartmentStore(writer: database.writer), verifier: identity.verifier).add(to: router)
    let signIn = SignInService(
        database: database.writer, gateway: identity.gateway, issuer: identity.issuer, policy: identity.policy,
        logger: identity.logger)
    AuthRoutes(signIn: signIn, verifier: identity.verifier).add(to: router)
    PatientRoutes(database: database.writer, verifier: identity.verifier).add(to: router)
    StaffRoutes(
        directory: identity.staffDirectory(database: database, signIn: signIn),
        administration: identity.staffAdministration(database: database), verifier: identity.verifier
    ).add(to: router)
    IntegratorRoutes(
        directory: IntegratorDirectory(database: database.writer, issuer: identity.issuer, logger: identity.logger),
        verifier: identity.verifier
    ).add(to: router)
    BookingRoutes(database: database.writer, verifier: identity.verifier, setup: booking).add(to: router)
    if let sandbox = identity.sandbox { SandboxSMSRoutes(gateway: sandbox).add(to: router) }
    booking.sandbox?.add(to: router)
    return router
}

/// What registration signs people in with: the token issuer and verifier, and the SMS provider.
public struct RegistrationIdentity: Sendable {
    let issuer: TokenIssuer
    let verifier: TokenVerifier
    let gateway: any SMSGateway
    /// Set when the gateway is the sandbox, for its internal route.
    let sandbox: SandboxSMSGateway?
    let policy: SignInPolicy
    let logger: Logger
    /// bcrypt's work factor for staff passwords.
    var bcryptCost: UInt8 = 12

    func staffDirectory(database: ServiceDatabase, signIn: SignInService) -> StaffDirectory {
        StaffDirectory(database: database.writer, signIn: signIn, bcryptCost: bcryptCost, logger: logger)
    }

    func staffAdministration(database: ServiceDatabase) -> StaffAdministration {
        StaffAdministration(database: database.writer, bcryptCost: bcryptCost, logger: logger)
    }

    static func make(configuration: RegistrationConfiguration, logger: Logger) async -> RegistrationIdentity {
        let gateway: any SMSGateway
        var sandbox: SandboxSMSGateway?
        switch configuration.sms {
        case .sandbox(let timeout):
            let recorder = SandboxSMSGateway(
                outbox: configuration.dataDirectory.appendingPathComponent("sandbox-sms.jsonl"), timeout: timeout,
                logger: logger)
            logger.warning("sign-in codes go to the sandbox SMS gateway", metadata: ["file": "\(recorder.outbox.path)"])
            gateway = recorder
            sandbox = recorder
        case .http(let url, let keyID, let secret, let timeout):
            gateway = HTTPSMSGateway(
                client: CalloutClient(logger: logger), url: url,
                signing: MessageSigning(keyID: keyID, secret: secret), timeout: timeout)
        }
        return await RegistrationIdentity(
            signingKey: configuration.signingKey, otherKeys: configuration.otherVerificationKeys, gateway: gateway,
            sandbox: sandbox, policy: SignInPolicy(), logger: logger)
    }

    init(
        signingKey: SigningKey, otherKeys: [VerificationKey], gateway: any SMSGateway, sandbox: SandboxSMSGateway?,
        policy: SignInPolicy, logger: Logger
    ) async {
        issuer = await TokenIssuer(signingKey: signingKey)
        verifier = await TokenVerifier(publicKeys: [signingKey.verificationKey] + otherKeys)
        self.gateway = gateway
        self.sandbox = sandbox
        self.policy = policy
        self.logger = logger
    }

    /// A development identity: this signing key and the sandbox SMS gateway recording into `directory`. For
    /// tests and tools that build the router themselves.
    public static func development(
        signingKey: SigningKey, directory: URL, logger: Logger = Logger(label: "registration")
    )
        async -> RegistrationIdentity
    {
        let sandbox = SandboxSMSGateway(
            outbox: directory.appendingPathComponent("sandbox-sms.jsonl"), timeout: .milliseconds(200), logger: logger)
        var identity = await RegistrationIdentity(
            signingKey: signingKey, otherKeys: [], gateway: sandbox, sandbox: sandbox, policy: SignInPolicy(),
            logger: logger)
        identity.bcryptCost = 4  // fast enough for tests; the algorithm is the same
        return identity
    }
}

/// Registration's published HTTP API.
public enum RegistrationAPI {
    /// The OpenAPI 3.1 document in `Services/registration/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}
