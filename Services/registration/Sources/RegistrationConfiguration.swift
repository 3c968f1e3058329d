import Foundation
import YunzhenContracts
import YunzhenQueue
import YunzhenServiceKit

/// Everything registration reads from the environment at start-up.
public struct RegistrationConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/registration/`
    public var dataDirectory: URL
    /// `<YUNZHEN_DATA>/queue/registration/`: the topic registration publishes its events to.
    public var topicDirectory: URL
    /// How long and how much of the topic to keep (`YUNZHEN_QUEUE_RETENTION_DAYS`, `YUNZHEN_QUEUE_MAX_MB`,
    /// `YUNZHEN_QUEUE_HARD_LIMIT_MB`).
    public var retention = RetentionPolicy()
    /// The interim operator credential for catalogue writes (departments) until staff accounts exist (issue 4).
    /// Unset means no one may write.
    public var operatorKey: OperatorKey?

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.registration.defaultPort)
        dataDirectory = try DataRoot.directory(for: .registration, environment: environment)
        topicDirectory = try DataRoot.topicDirectory(for: .registration, environment: environment)
        let days = try environment.integer("YUNZHEN_QUEUE_RETENTION_DAYS", default: 7, in: 1...3650)
        let maximumMB = try environment.integer("YUNZHEN_QUEUE_MAX_MB", default: 10 * 1024, in: 64...(1 << 24))
        let hardLimitMB = try environment.integer("YUNZHEN_QUEUE_HARD_LIMIT_MB", default: 20 * 1024, in: 64...(1 << 24))
        guard hardLimitMB >= maximumMB else {
            throw ConfigurationError(
                variable: "YUNZHEN_QUEUE_HARD_LIMIT_MB", problem: "must be at least YUNZHEN_QUEUE_MAX_MB (\(maximumMB))"
            )
        }
        retention = RetentionPolicy(
            maximumAge: .seconds(days * 24 * 3600),
            maximumBytes: Int64(maximumMB) << 20,
            hardLimitBytes: Int64(hardLimitMB) << 20
        )
        operatorKey = try environment.optionalString("YUNZHEN_OPERATOR_KEY").map { (key) throws(ConfigurationError) in
            try OperatorKey(key, variable: "YUNZHEN_OPERATOR_KEY")
        }
    }

    public init(server: ServerSettings, dataDirectory: URL, topicDirectory: URL, operatorKey: OperatorKey?) {
        self.server = server
        self.dataDirectory = dataDirectory
        self.topicDirectory = topicDirectory
        self.operatorKey = operatorKey
    }
}
