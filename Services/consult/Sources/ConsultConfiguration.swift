import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Everything consult reads from the environment at start-up.
public struct ConsultConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/consult/`
    public var dataDirectory: URL
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.consult.defaultPort)
        dataDirectory = try DataRoot.directory(for: .consult, environment: environment)
        verificationKeys = try environment.verificationKeys()
    }
}
