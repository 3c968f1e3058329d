import Foundation

/// An integration event: a fact one service publishes for any other to act on. Its type name is
/// `<producer>.<fact-in-past-tense>.v<N>`; its payload only ever gains optional fields, and a breaking change is a
/// new type with the next version. Every type is listed in `EventCatalog`.
public protocol IntegrationEvent: Codable, Sendable {
    static var eventType: String { get }
    /// What the event is about (an id), for the envelope's `subject`.
    var subject: String { get }
}

/// A CloudEvents 1.0 envelope (JSON format) around an event: the payload of every queue record.
public struct CloudEvent<Payload: Codable & Sendable>: Codable, Sendable {
    public var specversion = "1.0"
    /// Unique per event; consumers and webhook receivers deduplicate on it.
    public var id: String
    /// The producing service as a URI reference, e.g. `/yunzhen/registration`.
    public var source: String
    public var type: String
    public var subject: String?
    public var time: Date
    /// Optional in CloudEvents; ours always say `application/json`.
    public var datacontenttype: String? = "application/json"
    public var data: Payload

    public init(id: String, source: String, type: String, subject: String?, time: Date, data: Payload) {
        self.id = id
        self.source = source
        self.type = type
        self.subject = subject
        self.time = time
        self.data = data
    }
}

extension CloudEvent where Payload: IntegrationEvent {
    public init(id: String = UUID().uuidString.lowercased(), source: String, time: Date = Date(), event: Payload) {
        self.init(id: id, source: source, type: Payload.eventType, subject: event.subject, time: time, data: event)
    }
}

/// The envelope without its payload: enough to route a record to the handler of its type, which then decodes
/// the whole event with its own payload type from the same bytes (so no number loses precision on the way).
public struct CloudEventHeader: Codable, Sendable, Equatable {
    public var specversion: String
    public var id: String
    public var source: String
    public var type: String
    public var subject: String?
    public var time: Date
}

/// The one JSON form of events on the queue: sorted keys, ISO 8601 times with milliseconds.
public enum EventCoding {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
                return date
            }
            return try Date(text, strategy: .iso8601)
        }
        return decoder
    }()
}
