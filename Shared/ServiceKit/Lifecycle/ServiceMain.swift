import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

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
            // The announcer comes last so that, shutting down in reverse order, it speaks before the server
            // starts draining.
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: app),
                        .init(service: ShutdownAnnouncer(logger: logger), successTerminationBehavior: .ignore),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
            logger.info("stopped")
            exit(0)
        } catch {
            logger.critical("cannot run", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }
}

/// Tells systemd and the log, as soon as a stop is asked for, that the process is stopping; the server then
/// finishes the requests in flight.
struct ShutdownAnnouncer: Service {
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("stopping: finishing requests in flight")
        SystemdNotifier.notify("STOPPING=1")
    }
}
