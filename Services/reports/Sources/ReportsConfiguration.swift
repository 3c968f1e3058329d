import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Everything reports reads from the environment at start-up.
public struct ReportsConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/reports/`
    public var dataDirectory: URL
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.reports.defaultPort)
        dataDirectory = try DataRoot.directory(for: .reports, environment: environment)
        verificationKeys = try environment.verificationKeys()
    }
}
