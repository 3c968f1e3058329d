import Foundation
import Logging

/// A configuration value that is missing or unusable. Start-up stops with this message, which names the variable.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let variable: String
    public let problem: String

    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "\(variable): \(problem)" }
}

/// Reads typed values from `YUNZHEN_*` environment variables, once, at start-up.
public struct EnvironmentReader: Sendable {
    let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    /// The value, or nil when unset. An empty value counts as unset, as systemd's `Environment=X=` means.
    public func optionalString(_ variable: String) -> String? {
        guard let value = values[variable], !value.isEmpty else { return nil }
        return value
    }

    public func string(_ variable: String, default fallback: String) -> String {
        optionalString(variable) ?? fallback
    }

    public func requiredString(_ variable: String, _ meaning: String) throws(ConfigurationError) -> String {
        guard let value = optionalString(variable) else {
            throw ConfigurationError(variable: variable, problem: "is not set; it must name \(meaning)")
        }
        return value
    }

    public func integer(_ variable: String, default fallback: Int, in range: ClosedRange<Int>)
        throws(ConfigurationError) -> Int
    {
        guard let text = optionalString(variable) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: variable,
                problem: "\"\(text)\" is not a whole number from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return value
    }

    /// `true` or `false` (also `yes`/`no`, `1`/`0`, any case).
    public func boolean(_ variable: String, default fallback: Bool) throws(ConfigurationError) -> Bool {
        guard let text = optionalString(variable) else { return fallback }
        switch text.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw ConfigurationError(variable: variable, problem: "\"\(text)\" is neither true nor false")
        }
    }

    public func port(_ variable: String, default fallback: Int) throws(ConfigurationError) -> Int {
        guard let text = optionalString(variable) else { return fallback }
        guard let value = Int(text), (0...65535).contains(value) else {
            throw ConfigurationError(variable: variable, problem: "\"\(text)\" is not a port number (0-65535)")
        }
        return value
    }

    /// One of a fixed set of words, e.g. a log level.
    public func choice<Value: RawRepresentable>(
        _ variable: String,
        default fallback: Value
    ) throws(ConfigurationError) -> Value where Value.RawValue == String, Value: CaseIterable {
        guard let text = optionalString(variable) else { return fallback }
        guard let value = Value(rawValue: text.lowercased()) else {
            let allowed = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(variable: variable, problem: "\"\(text)\" is not one of: \(allowed)")
        }
        return value
    }

    /// An absolute `http://` or `https://` base URL without a trailing slash.
    public func baseURL(_ variable: String, default fallback: String) throws(ConfigurationError) -> String {
        let text = optionalString(variable) ?? fallback
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil, url.query == nil, url.fragment == nil
        else {
            throw ConfigurationError(
                variable: variable, problem: "\"\(text)\" is not an http(s) base URL like http://127.0.0.1:8101")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// A directory path; relative paths are taken from the working directory.
    public func directory(_ variable: String, default fallback: String? = nil, _ meaning: String)
        throws(ConfigurationError) -> URL
    {
        let text: String
        if let fallback {
            text = string(variable, default: fallback)
        } else {
            text = try requiredString(variable, meaning)
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return URL(fileURLWithPath: text, isDirectory: true, relativeTo: cwd).standardizedFileURL
    }
}

extension Logger.Level: @retroactive CaseIterable {}
