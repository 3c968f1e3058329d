import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Everything followup reads from the environment at start-up.
public struct FollowupConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/followup/`
    public var dataDirectory: URL
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.followup.defaultPort)
        dataDirectory = try DataRoot.directory(for: .followup, environment: environment)
        verificationKeys = try environment.verificationKeys()
    }
}
