import Foundation
import Hummingbird
import Logging

/// The configuration of one process, read from the environment once at start-up.
public protocol ProcessConfiguration: Sendable {
    init(environment: EnvironmentReader) throws(ConfigurationError)
    var server: ServerSettings { get }
}

/// The body of every `main.swift`: read configuration (a bad value stops start-up naming the variable), set up
/// logging, build the application, and run it until SIGTERM or SIGINT has drained it.
public enum ServiceMain {
    /// Exit status for a configuration error (sysexits' EX_CONFIG); systemd shows it in `systemctl status`.
    public static let configurationErrorStatus: Int32 = 78

    public static func run<Configuration: ProcessConfiguration, App: ApplicationProtocol>(
        _ name: String,
        configuration: Configuration.Type,
        build: (Configuration, Logger) async throws -> App
    ) async -> Never {
        let configuration: Configuration
        do {
            configuration = try Configuration(environment: EnvironmentReader())
        } catch {
            FileHandle.standardError.write(Data("\(name): configuration error: \(error)\n".utf8))
            exit(configurationErrorStatus)
        }
        LogOutput.bootstrap(format: configuration.server.logFormat, level: configuration.server.logLevel)
        let logger = Logger(label: name)
        do {
            let app = try await build(configuration, logger)
            try await app.runService()
            logger.info("stopped")
            exit(0)
        } catch {
            logger.critical("cannot run", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }
}
