import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Everything screening reads from the environment at start-up.
public struct ScreeningConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/screening/`
    public var dataDirectory: URL
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.screening.defaultPort)
        dataDirectory = try DataRoot.directory(for: .screening, environment: environment)
        verificationKeys = try environment.verificationKeys()
    }
}
