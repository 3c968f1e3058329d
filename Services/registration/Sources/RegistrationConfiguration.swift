import Foundation
import YunzhenContracts
import YunzhenServiceKit

/// Everything registration reads from the environment at start-up.
public struct RegistrationConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/registration/`
    public var dataDirectory: URL
    /// `<YUNZHEN_DATA>/queue/registration/`: the topic registration publishes its events to.
    public var topicDirectory: URL
    /// The interim operator credential for catalogue writes (departments) until staff accounts exist (issue 4).
    /// Unset means no one may write.
    public var operatorKey: OperatorKey?

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.registration.defaultPort)
        dataDirectory = try DataRoot.directory(for: .registration, environment: environment)
        topicDirectory = try DataRoot.topicDirectory(for: .registration, environment: environment)
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
