// The outbox path end to end, as a service uses the queue: a service transaction records a change and its event
// (Outbox.publish), the OutboxRelay appends it to the topic, and a QueueConsumer in another process handles it in
// its own database. Latency runs from just before the service's transaction to the handler.
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization
import YunzhenContracts
import YunzhenMessaging
import YunzhenQueue
import YunzhenStorage

#if canImport(Glibc)
    import Glibc
#endif

/// The bench's event: the time its transaction began (monotonic, ns), padded to a 256-byte envelope.
struct BenchRecorded: IntegrationEvent {
    static let eventType = "bench.recorded.v1"
    var startedAt: UInt64
    var pad: String
    var subject: String { "bench" }

    init(startedAt: UInt64) {
        self.startedAt = startedAt
        // The envelope adds id, source, time and type around this: together about 256 bytes.
        pad = String(repeating: "x", count: 64)
    }
}

enum OutboxPath {
    static func producerMigrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("bench: visits") { db in
            try db.create(table: "visit") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("note", .text).notNull()
            }
        }
        Outbox.registerMigration(in: &migrator)
        return migrator
    }

    static func consumerMigrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("bench: seen") { db in
            try db.create(table: "seen") { table in
                table.primaryKey("event_id", .text)
            }
        }
        ConsumerSchema.registerMigration(in: &migrator)
        return migrator
    }

    /// Runs the producing service here and the consumer as a child process; `rate` 0 means as fast as 16
    /// concurrent transactions go. Emits one JSON line.
    static func measure(root: URL, rate: Int, seconds: Double, logger: Logger) async throws {
        let directory = root.appendingPathComponent("outbox-\(rate)")
        let topic = directory.appendingPathComponent("queue/producer")
        let database = try ServiceDatabase.open(
            directory: directory.appendingPathComponent("producer"), name: "producer", migrator: producerMigrator(),
            logger: logger)
        let writer = try TopicWriter.open(directory: topic, topic: "producer", logger: logger)
        let relay = OutboxRelay(database: database.writer, writer: writer, logger: logger)
        let group = ServiceGroup(services: [relay], logger: logger)
        let running = Task { try await group.run() }

        let consumer = Process()
        consumer.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        consumer.arguments = ["outbox-consumer", directory.path]
        let output = Pipe()
        consumer.standardOutput = output
        try consumer.run()
        let ready = directory.appendingPathComponent("consumer-ready")
        while !FileManager.default.fileExists(atPath: ready.path) { try await Task.sleep(for: .milliseconds(20)) }

        let transaction: @Sendable (Int) async throws -> Void = { index in
            let startedAt = Bench.monotonicNanoseconds()
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO visit (note) VALUES (?)", arguments: ["visit \(index)"])
                try Outbox.publish(BenchRecorded(startedAt: startedAt), source: "/bench/producer", in: db)
            }
        }
        let started = Bench.monotonicNanoseconds()
        let deadline = started + UInt64(seconds * 1e9)
        var committed = 0
        if rate > 0 {
            let interval = 1e9 / Double(rate)
            while Bench.monotonicNanoseconds() < deadline {
                let due = started + UInt64(Double(committed) * interval)
                var wake = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
                while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nil) == EINTR {}
                try await transaction(committed)
                committed += 1
            }
        } else {
            committed = try await withThrowingTaskGroup(of: Int.self) { tasks in
                for worker in 0..<16 {
                    tasks.addTask {
                        var done = 0
                        while Bench.monotonicNanoseconds() < deadline {
                            try await transaction(worker << 32 | done)
                            done += 1
                        }
                        return done
                    }
                }
                return try await tasks.reduce(0, +)
            }
        }
        let elapsed = Double(Bench.monotonicNanoseconds() - started) / 1e9
        try Data("\(committed)".utf8).write(to: directory.appendingPathComponent("expected"))
        let report = output.fileHandleForReading.readDataToEndOfFile()
        consumer.waitUntilExit()
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        writer.close()
        guard var fields = try JSONSerialization.jsonObject(with: report) as? [String: any Sendable] else {
            throw BenchFailure("the consumer process reported nothing")
        }
        fields["measure"] = "outbox end to end"
        fields["rate"] = rate == 0 ? "full load (16 concurrent transactions)" : "\(rate)/s"
        fields["committed"] = committed
        fields["transactions_per_s"] = Double(committed) / elapsed
        Bench.emit(fields)
    }

    /// The consumer process: handles the topic into its own database until it has seen as many events as the
    /// producer says it committed, then prints latency figures.
    static func consume(directory: URL, logger: Logger) async throws {
        let database = try ServiceDatabase.open(
            directory: directory.appendingPathComponent("consumer"), name: "consumer", migrator: consumerMigrator(),
            logger: logger)
        let latencies = Mutex<[Double]>([])
        let consumer = QueueConsumer(
            name: "bench", topic: "producer", topicDirectory: directory.appendingPathComponent("queue/producer"),
            eventTypes: [BenchRecorded.eventType], database: database.writer, logger: logger
        ) { event, db in
            let now = Bench.monotonicNanoseconds()
            let recorded = try event.decode(BenchRecorded.self)
            try db.execute(sql: "INSERT INTO seen (event_id) VALUES (?)", arguments: [recorded.id])
            latencies.withLock { $0.append(Double(now - recorded.data.startedAt) / 1000) }
        }
        let group = ServiceGroup(services: [consumer], logger: logger)
        let running = Task { try await group.run() }
        try Data().write(to: directory.appendingPathComponent("consumer-ready"))
        let expectedFile = directory.appendingPathComponent("expected")
        let giveUp = Bench.monotonicNanoseconds() + 120_000_000_000
        while Bench.monotonicNanoseconds() < giveUp {
            if let text = try? String(contentsOf: expectedFile, encoding: .utf8), let expected = Int(text),
                latencies.withLock({ $0.count }) >= expected
            {
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        let sorted = latencies.withLock { $0 }.sorted()
        let handled = try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM seen") }
        Bench.emit([
            "handled": handled ?? 0, "p50_us": Bench.percentile(sorted, 0.5),
            "p99_us": Bench.percentile(sorted, 0.99), "max_us": sorted.last ?? .nan,
        ])
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
