import Foundation
import Logging

/// How a process listens and logs: the settings every one of the six reads the same way.
public struct ServerSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat

    public init(host: String = "127.0.0.1", port: Int, logLevel: Logger.Level = .info, logFormat: LogFormat = .text) {
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.logFormat = logFormat
    }

    /// Reads `YUNZHEN_HOST`, `YUNZHEN_PORT`, `YUNZHEN_LOG_LEVEL` and `YUNZHEN_LOG_FORMAT`.
    public static func read(
        from environment: EnvironmentReader,
        defaultHost: String = "127.0.0.1",
        defaultPort: Int
    ) throws(ConfigurationError) -> ServerSettings {
        let format: LogFormatSetting = try environment.choice("YUNZHEN_LOG_FORMAT", default: .auto)
        return ServerSettings(
            host: environment.string("YUNZHEN_HOST", default: defaultHost),
            port: try environment.port("YUNZHEN_PORT", default: defaultPort),
            logLevel: try environment.choice("YUNZHEN_LOG_LEVEL", default: .info),
            logFormat: format.resolved
        )
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Equatable {
    /// One JSON object per line, for journald and log shippers.
    case json
    /// `2026-11-27T04:17:10Z info registration: message key=value`, for people at a terminal.
    case text
}

enum LogFormatSetting: String, CaseIterable {
    case auto, json, text

    var resolved: LogFormat {
        switch self {
        case .json: .json
        case .text: .text
        case .auto: isatty(STDOUT_FILENO) == 1 ? .text : .json
        }
    }
}
