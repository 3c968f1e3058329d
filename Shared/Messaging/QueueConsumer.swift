import Foundation
import GRDB
import Logging
import Metrics
import ServiceLifecycle
import YunzhenContracts
import YunzhenQueue

/// An event as a consumer's handler receives it: its place in the topic, its envelope, and its bytes to decode
/// with the payload type the handler expects.
public struct ConsumedEvent: Sendable {
    public let topic: String
    public let offset: UInt64
    public let header: CloudEventHeader
    public let bytes: [UInt8]

    public func decode<Payload: Codable & Sendable>(_ type: Payload.Type) throws -> CloudEvent<Payload> {
        try EventCoding.decoder.decode(CloudEvent<Payload>.self, from: Data(bytes))
    }
}

/// Reads one topic for one consumer and applies each event of the types it wants, exactly once in effect: the
/// handler writes through the transaction it is given, and the consumer's position in the topic is stored in the
/// same transaction. After any crash it resumes where its last commit says.
///
/// Events are handled in batches in one transaction; if a batch fails, its events are handled one at a time, and
/// an event that fails `maximumAttempts` times on its own (with backoff between) goes to the dead-letter table
/// with its error, while the consumer moves on. An operator can list and retry dead letters.
public final class QueueConsumer: Service, @unchecked Sendable {
    public typealias Handler = @Sendable (ConsumedEvent, Database) throws -> Void

    public let name: String
    public let topic: String
    private let topicDirectory: URL
    private let eventTypes: Set<String>
    private let database: any DatabaseWriter
    private let handler: Handler
    private let logger: Logger
    private let maximumAttempts: Int
    private let backoff: @Sendable (Int) -> Duration
    private let pollInterval: Duration
    private let batchSize: Int
    private let signal = WakeSignal()
    private let lag: Gauge
    private let deadLettered: Counter
    private let handled: Counter

    public init(
        name: String,
        topic: String,
        topicDirectory: URL,
        eventTypes: Set<String>,
        database: any DatabaseWriter,
        logger: Logger,
        maximumAttempts: Int = 5,
        backoff: @escaping @Sendable (Int) -> Duration = { attempt in .milliseconds(100 * (1 << min(attempt, 6))) },
        pollInterval: Duration = .milliseconds(200),
        batchSize: Int = 256,
        handler: @escaping Handler
    ) {
        self.name = name
        self.topic = topic
        self.topicDirectory = topicDirectory
        self.eventTypes = eventTypes
        self.database = database
        self.handler = handler
        self.logger = logger
        self.maximumAttempts = maximumAttempts
        self.backoff = backoff
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        let dimensions = [("consumer", name), ("topic", topic)]
        lag = Gauge(label: "yunzhen_queue_consumer_lag", dimensions: dimensions)
        deadLettered = Counter(label: "yunzhen_queue_dead_letters_total", dimensions: dimensions)
        handled = Counter(label: "yunzhen_queue_handled_total", dimensions: dimensions)
    }

    public func run() async throws {
        let watcher = TopicWatcher(directory: topicDirectory, signal: signal)
        defer { watcher?.stop() }
        var reader: TopicReader?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if reader == nil {
                    reader = try TopicReader(directory: topicDirectory, from: try await storedOffset())
                }
                if try await consumeOnce(reader!) { continue }
                lag.record(0)
            } catch is CancellationError {
                return
            } catch {
                // Reading failed (the topic is not there yet, a file vanished): start again from the stored offset.
                logger.warning(
                    "consumer cannot read its topic", metadata: ["consumer": "\(name)", "error": "\(error)"])
                reader = nil
            }
            await signal.wait(timeout: pollInterval)
        }
    }

    /// Handles what is available now; returns false when there was nothing.
    func consumeOnce(_ reader: TopicReader) async throws -> Bool {
        let batch = try reader.next(limit: batchSize)
        guard !batch.records.isEmpty || !batch.quarantined.isEmpty else { return false }
        lag.record(Int64(reader.durableEnd) - Int64(reader.nextOffset))
        for offset in batch.quarantined {
            logger.error(
                "skipping a damaged record",
                metadata: ["consumer": "\(name)", "topic": "\(topic)", "offset": "\(offset)"])
            try await deadLetter(
                offset: offset, header: nil, bytes: [], error: "the record is damaged (checksum mismatch)", attempts: 0)
        }
        var wanted: [ConsumedEvent] = []
        for record in batch.records {
            guard let header = try? EventCoding.decoder.decode(CloudEventHeader.self, from: Data(record.payload)) else {
                try await deadLetter(
                    offset: record.offset, header: nil, bytes: record.payload, error: "not a CloudEvents envelope",
                    attempts: 0)
                continue
            }
            if eventTypes.contains(header.type) {
                wanted.append(ConsumedEvent(topic: topic, offset: record.offset, header: header, bytes: record.payload))
            }
        }
        let through = batch.records.last?.offset ?? batch.quarantined.last ?? 0
        try await handle(wanted, advancingThrough: through)
        return true
    }

    /// Applies `events` and stores the position after `offset`; isolates a failing event when the batch fails.
    private func handle(_ events: [ConsumedEvent], advancingThrough offset: UInt64) async throws {
        do {
            try await database.write { [handler, name, topic] db in
                for event in events { try handler(event, db) }
                try Self.storeOffset(offset + 1, consumer: name, topic: topic, in: db)
            }
            handled.increment(by: events.count)
            announcePosition(offset + 1)
            return
        } catch {
            guard !events.isEmpty else { throw error }
        }
        for event in events {
            try await handleAlone(event)
        }
        try await database.write { [name, topic] db in
            try Self.storeOffset(offset + 1, consumer: name, topic: topic, in: db)
        }
        announcePosition(offset + 1)
    }

    /// Tells the topic's retention how far this consumer has committed, so it keeps what the consumer still needs.
    private func announcePosition(_ offset: UInt64) {
        ConsumerPositions.record(offset, consumer: name, topicDirectory: topicDirectory)
    }

    private func handleAlone(_ event: ConsumedEvent) async throws {
        var attempt = 1
        while true {
            do {
                try await database.write { [handler, name, topic] db in
                    try handler(event, db)
                    try Self.storeOffset(event.offset + 1, consumer: name, topic: topic, in: db)
                }
                handled.increment()
                return
            } catch {
                if attempt >= maximumAttempts {
                    logger.error(
                        "event dead-lettered",
                        metadata: [
                            "consumer": "\(name)", "offset": "\(event.offset)", "type": "\(event.header.type)",
                            "error": "\(error)",
                        ]
                    )
                    try await deadLetter(
                        offset: event.offset, header: event.header, bytes: event.bytes, error: "\(error)",
                        attempts: attempt)
                    return
                }
                logger.warning(
                    "event handler failed; retrying",
                    metadata: [
                        "consumer": "\(name)", "offset": "\(event.offset)", "attempt": "\(attempt)",
                        "error": "\(error)",
                    ]
                )
                try await Task.sleep(for: backoff(attempt))
                attempt += 1
            }
        }
    }

    private func deadLetter(offset: UInt64, header: CloudEventHeader?, bytes: [UInt8], error: String, attempts: Int)
        async throws
    {
        try await database.write { [name, topic] db in
            try db.execute(
                sql: """
                    INSERT INTO \(ConsumerSchema.deadLetters)
                        (consumer, topic, "offset", event_id, event_type, event, error, attempts, failed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [name, topic, Int64(offset), header?.id, header?.type, Data(bytes), error, attempts, Date()]
            )
            try Self.storeOffset(offset + 1, consumer: name, topic: topic, in: db)
        }
        deadLettered.increment()
    }

    private func storedOffset() async throws -> UInt64 {
        try await database.read { [name, topic] db in
            try Self.offset(consumer: name, topic: topic, in: db)
        }
    }

    static func offset(consumer: String, topic: String, in db: Database) throws -> UInt64 {
        let stored = try Int64.fetchOne(
            db,
            sql: "SELECT next_offset FROM \(ConsumerSchema.offsets) WHERE consumer = ? AND topic = ?",
            arguments: [consumer, topic]
        )
        return UInt64(stored ?? 0)
    }

    static func storeOffset(_ offset: UInt64, consumer: String, topic: String, in db: Database) throws {
        // Never move backwards: a retried dead letter is handled out of order, and must not rewind the consumer.
        try db.execute(
            sql: """
                INSERT INTO \(ConsumerSchema.offsets) (consumer, topic, next_offset) VALUES (?, ?, ?)
                ON CONFLICT (consumer, topic) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)
                """,
            arguments: [consumer, topic, Int64(offset)]
        )
    }
}
