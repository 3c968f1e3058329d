import Crypto
import Foundation
import Logging
import YunzhenCallout

/// Sends text messages to patients' phones. Production talks to the hospital's SMS provider over HTTP
/// (`HTTPSMSGateway`); development and the tests use `SandboxSMSGateway`, which production refuses to start with.
protocol SMSGateway: Sendable {
    func send(_ message: SMSMessage) async throws(SMSFailure)
}

struct SMSMessage: Sendable, Codable, Equatable {
    var to: String
    /// The provider's template (pre-approved text, as Chinese carriers require) and its parameters.
    var template: String
    var parameters: [String: String]
    /// The text as the patient reads it, for the sandbox's record and the logs of a development machine.
    var text: String
}

enum SMSFailure: Error, Equatable, CustomStringConvertible {
    /// The provider refused the message (a bad number, a blocked template, its own rate limit).
    case rejected(String)
    /// The provider did not answer in time or could not be reached; it may or may not have sent the message.
    case unavailable(String)

    var description: String {
        switch self {
        case .rejected(let reason): "the SMS provider refused the message: \(reason)"
        case .unavailable(let reason): "the SMS provider could not be reached: \(reason)"
        }
    }
}

/// Development's SMS provider: appends each message as a JSON line to a file a developer (or a test) can read,
/// and fails like a real provider for numbers set aside for it: one ending in 0000 is rejected, one ending in
/// 0001 gets no answer before the timeout.
struct SandboxSMSGateway: SMSGateway {
    let outbox: URL
    let timeout: Duration
    let logger: Logger

    struct Recorded: Codable, Sendable {
        var message: SMSMessage
        var sentAt: Date
    }

    func send(_ message: SMSMessage) async throws(SMSFailure) {
        if message.to.hasSuffix("0000") {
            throw .rejected("the number is not in service (sandbox: numbers ending 0000)")
        }
        if message.to.hasSuffix("0001") {
            try? await Task.sleep(for: timeout)
            throw .unavailable("no answer within \(timeout) (sandbox: numbers ending 0001)")
        }
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var line = try encoder.encode(Recorded(message: message, sentAt: Date()))
            line.append(0x0A)
            if !FileManager.default.fileExists(atPath: outbox.path) {
                FileManager.default.createFile(
                    atPath: outbox.path, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            let handle = try FileHandle(forWritingTo: outbox)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            throw .unavailable("the sandbox could not record the message: \(error)")
        }
        logger.notice("sandbox SMS recorded", metadata: ["to": "\(message.to.prefix(3))****\(message.to.suffix(4))"])
    }

    /// The messages recorded for `phone`, oldest first.
    func messages(to phone: String) -> [Recorded] {
        guard let data = try? Data(contentsOf: outbox) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(Recorded.self, from: $0) }
            .filter { $0.message.to == phone }
    }
}

/// The hospital's SMS provider over HTTPS, through the libcurl callout client.
///
/// The contract (documented in Services/registration/README.md, the one an SMS relay or a provider adapter
/// implements): `POST <url>` with the JSON `{"to","template","parameters"}`, signed as `MessageSigning` says.
/// A 2xx answer means accepted; any other answer's body is the provider's reason.
struct HTTPSMSGateway: SMSGateway {
    let client: CalloutClient
    let url: String
    let signing: MessageSigning
    let timeout: Duration

    func send(_ message: SMSMessage) async throws(SMSFailure) {
        struct Body: Encodable {
            var to: String
            var template: String
            var parameters: [String: String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = Array(
            (try? encoder.encode(Body(to: message.to, template: message.template, parameters: message.parameters)))
                ?? Data())
        let response: CalloutResponse
        do {
            response = try await client.execute(
                CalloutRequest(
                    method: "POST", url: url,
                    headers: [(name: "Content-Type", value: "application/json")] + signing.headers(for: body),
                    body: body, timeout: timeout))
        } catch {
            throw .unavailable("\(error)")
        }
        guard (200..<300).contains(response.status) else {
            let reason = String(decoding: response.body.prefix(300), as: UTF8.self)
            if response.status >= 500 { throw .unavailable("HTTP \(response.status): \(reason)") }
            throw .rejected("HTTP \(response.status): \(reason)")
        }
    }
}
