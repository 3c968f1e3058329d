import Foundation
import Logging

/// Sets up swift-log for a process: JSON lines or text on stdout, at the configured level. Call once, in `main`.
public enum LogOutput {
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                switch format {
                case .json: LineLogHandler(label: label, render: LineLogHandler.renderJSON)
                case .text: LineLogHandler(label: label, render: LineLogHandler.renderText)
                }
            handler.logLevel = level
            return handler
        }
    }
}

/// Writes one line per message to stdout; metadata (the request id among it) goes on every line.
struct LineLogHandler: LogHandler {
    typealias Renderer =
        @Sendable (
            _ time: String, _ level: Logger.Level, _ label: String, _ message: String, _ metadata: Logger.Metadata
        ) -> String

    let label: String
    let render: Renderer
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, render: @escaping Renderer) {
        self.label = label
        self.render = render
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = render(Self.timestamp(), event.level, label, "\(event.message)", merged)
        StandardOutput.shared.write(line + "\n")
    }

    static func renderJSON(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata)
        -> String
    {
        var line =
            "{\"time\":\(jsonString(time)),\"level\":\(jsonString(level.rawValue)),\"label\":\(jsonString(label)),\"message\":\(jsonString(message))"
        for key in metadata.keys.sorted() {
            line += ",\(jsonString(key)):\(json(metadata[key]!))"
        }
        return line + "}"
    }

    static func renderText(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata)
        -> String
    {
        var line = "\(time) \(level) \(label): \(message)"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(metadata[key]!)"
        }
        return line
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): jsonString(text)
        case .stringConvertible(let convertible): jsonString(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            "{" + values.keys.sorted().map { "\(jsonString($0)):\(json(values[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                escaped +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    private static func timestamp() -> String {
        Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// Serialises whole lines to stdout so lines from concurrent tasks never interleave.
final class StandardOutput: @unchecked Sendable {
    static let shared = StandardOutput()
    private let lock = NSLock()

    func write(_ line: String) {
        lock.withLock {
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    // A closed or full stdout must not stop the service; the line is lost, the request is not.
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }
}
