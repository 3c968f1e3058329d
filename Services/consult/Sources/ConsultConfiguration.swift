import Foundation
import YunzhenContracts
import YunzhenServiceKit

/// Everything consult reads from the environment at start-up.
public struct ConsultConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/consult/`
    public var dataDirectory: URL

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.consult.defaultPort)
        dataDirectory = try DataRoot.directory(for: .consult, environment: environment)
    }
}
