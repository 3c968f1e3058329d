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

extension ConsumedEvent {
    /// The event in `bytes` (a CloudEvent in the queue's JSON form), as read at `offset` of `topic`.
    public init(topic: String, offset: UInt64, bytes: [UInt8]) throws {
        self.init(
            topic: topic, offset: offset,
            header: try EventCoding.decoder.decode(CloudEventHeader.self, from: Data(bytes)),
            bytes: bytes)
    }
}

/// Reads one topic for one consumer and applies each event of the types it wants, exactly once in effect: the
/// handler writes through the transaction it is given, and the consumer's position in the topic is stored in the
/// same transaction. After any crash it resumes where its last commit says.
///
/// Events are handled in batches in one transaction; if a batch fails, its events are handled one at a time, and
/// an event that fails `maximumAttempts` times on its own (with backoff between) goes to the dead-letter table
/// with its error, while the consumer moves on. Dead letters an operator asked to retry (`yunzhen queue
/// dead-letters retry`) are handled again by this consumer, with its handler, at its next poll.
///
/// The consumer runs on a thread of its own, not on Swift's cooperative pool: everything it does blocks (file
/// reads, SQLite commits that wait for an fsync), and on a thread it can sleep on inotify and commit in place. On
/// the development machine this took publish→handler latency at 1,000 events/s from a p50 of 1.1 ms (a task woken
/// through a continuation, then a hop to GRDB's writer queue) to the figures in Tests/Benchmarks/README.md.
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
    private let lag: Gauge
    private let deadLettered: Counter
    private let handled: Counter
    // The consumer thread's own: the committed position and what retention was last told of it.
    private var committed: UInt64?
    private var announced: UInt64?
    private var lastAnnouncement = ContinuousClock.now

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

    /// Runs until graceful shutdown or cancellation. What was being handled then is either committed or not at
    /// all, and the next run starts from the last commit.
    public func run() async throws {
        let waiter = TopicWaiter(directory: topicDirectory)
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let thread = Thread { [self] in
                        continuation.resume(with: Result { try consume(until: waiter) })
                    }
                    thread.name = "yunzhen-consumer-\(name)"
                    thread.start()
                }
            } onCancel: {
                waiter.stop()
            }
        } onGracefulShutdown: {
            waiter.stop()
        }
    }

    /// The consumer's thread: read, handle, commit; sleep on the waiter when there is nothing to do.
    private func consume(until waiter: TopicWaiter) throws {
        var reader: TopicReader?
        var lastRetryCheck: ContinuousClock.Instant?
        while !waiter.isStopped {
            do {
                if reader == nil {
                    reader = try TopicReader(directory: topicDirectory, from: try storedOffset())
                }
                if lastRetryCheck.map({ ContinuousClock.now - $0 >= pollInterval }) ?? true {
                    lastRetryCheck = ContinuousClock.now
                    try retryRequestedDeadLetters()
                }
                if try consumeOnce(reader!, waiter: waiter) {
                    if ContinuousClock.now - lastAnnouncement >= .seconds(1) { announcePosition() }
                    continue
                }
                lag.record(0)
                announcePosition()
            } catch is ConsumerStopped {
                break
            } catch {
                // Reading failed (the topic is not there yet, a file vanished) or the database did: start again
                // from the stored offset after a poll interval.
                logger.warning(
                    "consumer cannot go on for now", metadata: ["consumer": "\(name)", "error": "\(error)"])
                reader = nil
                _ = waiter.sleep(for: pollInterval)
                continue
            }
            waiter.wait(timeout: pollInterval)
        }
        announcePosition()
    }

    private struct ConsumerStopped: Error {}

    /// Handles what is available now; returns false when there was nothing.
    private func consumeOnce(_ reader: TopicReader, waiter: TopicWaiter) throws -> Bool {
        let batch = try reader.next(limit: batchSize)
        guard !batch.records.isEmpty || !batch.quarantined.isEmpty else { return false }
        lag.record(Int64(reader.durableEnd) - Int64(reader.nextOffset))
        for offset in batch.quarantined {
            logger.error(
                "skipping a damaged record",
                metadata: ["consumer": "\(name)", "topic": "\(topic)", "offset": "\(offset)"])
            try deadLetter(
                offset: offset, header: nil, bytes: [], error: "the record is damaged (checksum mismatch)", attempts: 0)
        }
        var wanted: [ConsumedEvent] = []
        for record in batch.records {
            guard let header = try? EventCoding.decoder.decode(CloudEventHeader.self, from: Data(record.payload)) else {
                try deadLetter(
                    offset: record.offset, header: nil, bytes: record.payload, error: "not a CloudEvents envelope",
                    attempts: 0)
                continue
            }
            if eventTypes.contains(header.type) {
                wanted.append(ConsumedEvent(topic: topic, offset: record.offset, header: header, bytes: record.payload))
            }
        }
        let through = batch.records.last?.offset ?? batch.quarantined.last ?? 0
        try handle(wanted, advancingThrough: through, waiter: waiter)
        return true
    }

    /// Applies `events` and stores the position after `offset`; isolates a failing event when the batch fails.
    private func handle(_ events: [ConsumedEvent], advancingThrough offset: UInt64, waiter: TopicWaiter) throws {
        do {
            try database.write { db in
                for event in events { try handler(event, db) }
                try Self.storeOffset(offset + 1, consumer: name, topic: topic, in: db)
            }
            handled.increment(by: events.count)
            committed = offset + 1
            return
        } catch {
            guard !events.isEmpty else { throw error }
        }
        for event in events {
            try handleAlone(event, waiter: waiter)
        }
        try database.write { db in
            try Self.storeOffset(offset + 1, consumer: name, topic: topic, in: db)
        }
        committed = offset + 1
    }

    /// Tells the topic's retention how far this consumer has committed, so it keeps what the consumer still needs.
    /// Done when the consumer catches up, stops, or has been busy for a second, not after every commit: the file
    /// is replaced whole (about 0.6 ms here, as much as the commit itself), and a stale position only makes
    /// retention keep a little more.
    private func announcePosition() {
        lastAnnouncement = ContinuousClock.now
        guard let committed, committed != announced else { return }
        ConsumerPositions.record(committed, consumer: name, topicDirectory: topicDirectory)
        announced = committed
    }

    private func handleAlone(_ event: ConsumedEvent, waiter: TopicWaiter) throws {
        var attempt = 1
        while true {
            do {
                try database.write { db in
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
                    try deadLetter(
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
                // Stopping mid-backoff leaves the event unhandled and its offset unstored: the next run retries it.
                if waiter.sleep(for: backoff(attempt)) { throw ConsumerStopped() }
                attempt += 1
            }
        }
    }

    private func deadLetter(offset: UInt64, header: CloudEventHeader?, bytes: [UInt8], error: String, attempts: Int)
        throws
    {
        try database.write { db in
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

    /// Handles the dead letters of this consumer that an operator asked to retry, each in its own transaction.
    /// One that fails again stays dead, with the new error, and the request is cleared either way, so whoever
    /// asked can see the outcome.
    private func retryRequestedDeadLetters() throws {
        let requested = try database.read { db in
            try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM \(ConsumerSchema.deadLetters)
                    WHERE consumer = ? AND retried_at IS NULL AND retry_requested_at IS NOT NULL ORDER BY id
                    """,
                arguments: [name])
        }
        for id in requested {
            do {
                try database.write { db in try DeadLetters.retry(id: id, with: handler, in: db) }
                logger.notice("dead letter retried", metadata: ["consumer": "\(name)", "dead_letter": "\(id)"])
            } catch {
                logger.warning(
                    "dead letter failed again",
                    metadata: ["consumer": "\(name)", "dead_letter": "\(id)", "error": "\(error)"])
                try database.write { db in try DeadLetters.recordFailedRetry(id: id, error: "\(error)", in: db) }
            }
        }
    }

    private func storedOffset() throws -> UInt64 {
        try database.read { db in
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
