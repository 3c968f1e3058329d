import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenQueue
import YunzhenServiceKit

/// Everything screening reads from the environment at start-up.
public struct ScreeningConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/screening/`
    public var dataDirectory: URL
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]
    /// `<YUNZHEN_DATA>/queue/screening/`: the topic screening publishes its events to.
    public var topicDirectory: URL
    /// `<YUNZHEN_DATA>/queue/registration/`: registration's topic, whose appointment events open screenings.
    public var registrationTopicDirectory: URL
    /// How long before the visit the questionnaire opens (`YUNZHEN_SCREENING_OPENS_HOURS`, 1–168, default 24); it
    /// closes when the visit ends.
    public var opensBefore: TimeInterval = 24 * 3600
    /// Whether an entry pass lets its holder in once only (`YUNZHEN_SCREENING_SINGLE_ENTRY`, `true` or `false`,
    /// default `true`); otherwise any number of times on its day, each entry recorded.
    public var singleEntry = true
    /// Retention of the `screening` topic (`YUNZHEN_QUEUE_*`, as every producer reads them).
    public var retention = RetentionPolicy()

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.screening.defaultPort)
        dataDirectory = try DataRoot.directory(for: .screening, environment: environment)
        verificationKeys = try environment.verificationKeys()
        topicDirectory = try DataRoot.topicDirectory(for: .screening, environment: environment)
        registrationTopicDirectory = try DataRoot.topicDirectory(for: .registration, environment: environment)
        opensBefore = TimeInterval(
            try environment.integer("YUNZHEN_SCREENING_OPENS_HOURS", default: 24, in: 1...168) * 3600)
        singleEntry = try environment.boolean("YUNZHEN_SCREENING_SINGLE_ENTRY", default: true)
        retention = try environment.retentionPolicy()
    }
}
