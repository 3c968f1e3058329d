import Foundation
import GRDB
import Logging
import Testing
import YunzhenContracts
import YunzhenMessaging
import YunzhenQueue
import YunzhenStorage
import YunzhenTesting

/// Outbox, relay and consumer on real SQLite files and a real topic.
@Suite struct MessagingTests {
    static var producerMigrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("departments") { db in
            try db.create(table: "department") { $0.primaryKey("id", .text) }
        }
        Outbox.registerMigration(in: &migrator)
        return migrator
    }

    static var consumerMigrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("seen") { db in
            try db.create(table: "seen") { table in
                table.primaryKey("event_id", .text)
                table.column("department", .text).notNull()
            }
        }
        ConsumerSchema.registerMigration(in: &migrator)
        return migrator
    }

    static func saved(_ id: String) -> DepartmentSaved {
        DepartmentSaved(departmentID: DepartmentID(id), name: "科室 \(id)", nameEn: "Department \(id)", created: true)
    }

    /// Creates a department and its event in one transaction, as a service does.
    static func createDepartment(_ id: String, in database: ServiceDatabase) async throws {
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO department (id) VALUES (?)", arguments: [id])
            try Outbox.publish(saved(id), source: "/yunzhen/registration", in: db)
        }
    }

    static func topicRecords(_ directory: URL) throws -> [RecordFormat.Record] {
        let reader = try TopicReader(directory: directory)
        return try reader.next(limit: 10_000).records
    }

    static func waitUntil(_ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func publishingOutsideATransactionIsRefused() async throws {
        let database = try ServiceDatabase.inMemory(migrator: Self.producerMigrator)
        await #expect(throws: OutboxError.self) {
            try await database.writer.writeWithoutTransaction { db in
                try Outbox.publish(Self.saved("x"), source: "/yunzhen/registration", in: db)
            }
        }
    }

    @Test func onlyCommittedChangesArePublishedInOrder() async throws {
        try await withTemporaryDirectory { directory in
            let database = try ServiceDatabase.open(
                directory: directory, name: "registration", migrator: Self.producerMigrator, logger: Logger(label: "t"))
            let topic = directory.appendingPathComponent("queue/registration")
            let writer = try TopicWriter.open(directory: topic, topic: "registration")
            defer { writer.close() }
            try await Self.createDepartment("hematology", in: database)
            struct Rollback: Error {}
            await #expect(throws: Rollback.self) {
                try await database.writer.write { db in
                    try db.execute(sql: "INSERT INTO department (id) VALUES ('ghost')")
                    try Outbox.publish(Self.saved("ghost"), source: "/yunzhen/registration", in: db)
                    throw Rollback()
                }
            }
            try await Self.createDepartment("pediatrics", in: database)

            let relay = OutboxRelay(database: database.writer, writer: writer, logger: Logger(label: "relay"))
            let task = Task { try await relay.run() }
            try await Self.waitUntil {
                let left = try await database.writer.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM queue_outbox")
                }
                return try Self.topicRecords(topic).count == 2 && left == 0
            }
            task.cancel()
            _ = try? await task.value

            let subjects = try Self.topicRecords(topic).map {
                try EventCoding.decoder.decode(CloudEvent<DepartmentSaved>.self, from: Data($0.payload)).subject
            }
            #expect(subjects == ["hematology", "pediatrics"])
        }
    }

    @Test func aRelayThatCrashedAfterAppendingDoesNotPublishTwice() async throws {
        try await withTemporaryDirectory { directory in
            let database = try ServiceDatabase.open(
                directory: directory, name: "registration", migrator: Self.producerMigrator, logger: Logger(label: "t"))
            let topic = directory.appendingPathComponent("queue/registration")
            for id in ["a", "b", "c"] { try await Self.createDepartment(id, in: database) }
            // The crash: the rows reached the topic, the process died before deleting them from the outbox.
            let rows = try await database.writer.read { db in
                try Row.fetchAll(db, sql: "SELECT id, event FROM queue_outbox WHERE id <= 2 ORDER BY id")
            }
            let crashed = try TopicWriter.open(directory: topic, topic: "registration")
            _ = try await crashed.append(
                rows.map { .init(producerSequence: UInt64($0["id"] as Int64), payload: Array($0["event"] as Data)) })
            crashed.close()
            try await Task.sleep(for: .milliseconds(50))

            let writer = try TopicWriter.open(directory: topic, topic: "registration")
            defer { writer.close() }
            #expect(writer.recoveredProducerSequence == 2)
            let relay = OutboxRelay(database: database.writer, writer: writer, logger: Logger(label: "relay"))
            let task = Task { try await relay.run() }
            try await Self.waitUntil { try Self.topicRecords(topic).count >= 3 }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            _ = try? await task.value
            #expect(try Self.topicRecords(topic).map(\.producerSequence) == [1, 2, 3])
        }
    }

    @Test func aConsumerAppliesEachEventOnceAndResumesWhereItCommitted() async throws {
        try await withTemporaryDirectory { directory in
            let topic = directory.appendingPathComponent("queue/registration")
            let writer = try TopicWriter.open(directory: topic, topic: "registration")
            defer { writer.close() }
            let consumerDatabase = try ServiceDatabase.open(
                directory: directory, name: "consult", migrator: Self.consumerMigrator, logger: Logger(label: "t"))
            let handler: QueueConsumer.Handler = { event, db in
                let saved = try event.decode(DepartmentSaved.self)
                try db.execute(
                    sql: "INSERT INTO seen (event_id, department) VALUES (?, ?)",
                    arguments: [saved.id, saved.data.departmentID.rawValue])
            }
            func makeConsumer() -> QueueConsumer {
                QueueConsumer(
                    name: "consult-departments", topic: "registration", topicDirectory: topic,
                    eventTypes: [DepartmentSaved.eventType], database: consumerDatabase.writer,
                    logger: Logger(label: "consumer"), handler: handler
                )
            }
            func publish(_ ids: Range<Int>) async throws {
                let entries = try ids.map { index in
                    TopicWriter.Entry(
                        producerSequence: UInt64(index + 1),
                        payload: Array(
                            try EventCoding.encoder.encode(
                                CloudEvent(source: "/yunzhen/registration", event: Self.saved("d\(index)"))))
                    )
                }
                _ = try await writer.append(entries)
            }
            let seen: @Sendable () async throws -> Int = {
                try await consumerDatabase.writer.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM seen") ?? 0
                }
            }

            try await publish(0..<50)
            let first = Task { try await makeConsumer().run() }
            try await Self.waitUntil { try await seen() == 50 }
            first.cancel()
            _ = try? await first.value

            try await publish(50..<80)
            let second = Task { try await makeConsumer().run() }
            try await Self.waitUntil { try await seen() == 80 }
            try await Task.sleep(for: .milliseconds(100))
            second.cancel()
            _ = try? await second.value
            #expect(try await seen() == 80)
            let offset = try await consumerDatabase.writer.read { db in
                try Int.fetchOne(
                    db, sql: "SELECT next_offset FROM queue_consumer_offset WHERE consumer = 'consult-departments'")
            }
            #expect(offset == 80)
            // And retention knows how far it got.
            #expect(ConsumerPositions.all(topicDirectory: topic)["consult-departments"] == 80)
        }
    }

    @Test func aFailingEventIsDeadLetteredAndTheNextOneStillHandled() async throws {
        try await withTemporaryDirectory { directory in
            let topic = directory.appendingPathComponent("queue/registration")
            let writer = try TopicWriter.open(directory: topic, topic: "registration")
            defer { writer.close() }
            let database = try ServiceDatabase.open(
                directory: directory, name: "consult", migrator: Self.consumerMigrator, logger: Logger(label: "t"))
            let attempts = Counter()
            let handler: QueueConsumer.Handler = { event, db in
                let saved = try event.decode(DepartmentSaved.self)
                if saved.data.departmentID.rawValue == "poison" {
                    attempts.increment()
                    struct Poison: Error {}
                    throw Poison()
                }
                try db.execute(
                    sql: "INSERT INTO seen (event_id, department) VALUES (?, ?)",
                    arguments: [saved.id, saved.data.departmentID.rawValue])
            }
            let entries = try ["before", "poison", "after"].enumerated().map { index, id in
                TopicWriter.Entry(
                    producerSequence: UInt64(index + 1),
                    payload: Array(
                        try EventCoding.encoder.encode(
                            CloudEvent(source: "/yunzhen/registration", event: Self.saved(id))))
                )
            }
            _ = try await writer.append(entries)
            let consumer = QueueConsumer(
                name: "consult-departments", topic: "registration", topicDirectory: topic,
                eventTypes: [DepartmentSaved.eventType], database: database.writer, logger: Logger(label: "consumer"),
                maximumAttempts: 3, backoff: { _ in .milliseconds(1) }, handler: handler
            )
            let task = Task { try await consumer.run() }
            let deadLetters = DeadLetters(database: database.writer)
            try await Self.waitUntil { try await deadLetters.pending().count == 1 }
            try await Self.waitUntil {
                try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM seen") } == 2
            }
            task.cancel()
            _ = try? await task.value

            let letter = try #require(try await deadLetters.pending().first)
            #expect(letter.offset == 1)
            #expect(letter.attempts == 3)
            #expect(letter.eventType == DepartmentSaved.eventType)
            #expect(letter.error.contains("Poison"))
            // Once in the failed batch, then three times on its own.
            #expect(attempts.value == 4)

            // The operator fixes the cause and retries it.
            try await deadLetters.retry(id: letter.id) { event, db in
                let saved = try event.decode(DepartmentSaved.self)
                try db.execute(
                    sql: "INSERT INTO seen (event_id, department) VALUES (?, ?)", arguments: [saved.id, "poison-fixed"])
            }
            #expect(try await deadLetters.pending().isEmpty)
        }
    }
}

extension MessagingTests {
    /// `yunzhen queue dead-letters retry`, run as the operator runs it, while the consuming service runs: the
    /// consumer carries the retry out with its handler and the tool reports the outcome, failed or handled.
    @Test func anOperatorsRetryIsCarriedOutByTheRunningConsumer() async throws {
        try await withTemporaryDirectory { root in
            let topic = root.appendingPathComponent("queue/registration")
            let writer = try TopicWriter.open(directory: topic, topic: "registration")
            defer { writer.close() }
            // Laid out as on a host: <data>/<service>/<service>.sqlite, where the tool looks.
            let database = try ServiceDatabase.open(
                directory: root.appendingPathComponent("consult"), name: "consult", migrator: Self.consumerMigrator,
                logger: Logger(label: "t"))
            let fixed = Flag()
            let handler: QueueConsumer.Handler = { event, db in
                let saved = try event.decode(DepartmentSaved.self)
                struct NotYet: Error, CustomStringConvertible { var description: String { "downstream not ready" } }
                if saved.data.departmentID.rawValue == "poison" && !fixed.isSet { throw NotYet() }
                try db.execute(
                    sql: "INSERT INTO seen (event_id, department) VALUES (?, ?)",
                    arguments: [saved.id, saved.data.departmentID.rawValue])
            }
            _ = try await writer.append([
                TopicWriter.Entry(
                    producerSequence: 1,
                    payload: Array(
                        try EventCoding.encoder.encode(
                            CloudEvent(source: "/yunzhen/registration", event: Self.saved("poison")))))
            ])
            let consumer = QueueConsumer(
                name: "consult-departments", topic: "registration", topicDirectory: topic,
                eventTypes: [DepartmentSaved.eventType], database: database.writer, logger: Logger(label: "consumer"),
                maximumAttempts: 2, backoff: { _ in .milliseconds(1) }, pollInterval: .milliseconds(50),
                handler: handler
            )
            let running = Task { try await consumer.run() }
            defer { running.cancel() }
            let letters = DeadLetters(database: database.writer)
            try await Self.waitUntil { try await letters.pending().count == 1 }
            let id = try #require(try await letters.pending().first?.id)

            // Still broken: the tool says it failed again, with the error, and exits 1; the letter stays.
            let again = try Self.runTool(
                "queue", "dead-letters", "retry", "--data", root.path, "--service", "consult",
                "\(id)")
            #expect(again.status == 1)
            #expect(again.output.contains("#\(id): failed again after 3 attempts: downstream not ready"))
            #expect(try await letters.pending().map(\.attempts) == [3])

            // Fixed: handled, exit 0, the letter is no longer pending and its effect is there once.
            fixed.set()
            let handled = try Self.runTool(
                "queue", "dead-letters", "retry", "--data", root.path, "--service",
                "consult", "--all")
            #expect(handled.status == 0)
            #expect(handled.output.contains("#\(id): handled"))
            #expect(try await letters.pending().isEmpty)
            let seen = try await database.writer.read { db in
                try String.fetchAll(db, sql: "SELECT department FROM seen")
            }
            #expect(seen == ["poison"])

            // Nothing left to retry, and an unknown id is named.
            let unknown = try Self.runTool(
                "queue", "dead-letters", "retry", "--data", root.path, "--service",
                "consult", "999")
            #expect(unknown.status != 0)
            #expect(unknown.output.contains("consult has no pending dead letter #999"))
        }
    }

    /// Runs the built `yunzhen` tool (next to the test binary) and returns its exit status and output.
    static func runTool(_ arguments: String...) throws -> (status: Int32, output: String) {
        let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("yunzhen")
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

/// A flag a test sets and a handler reads from another thread.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// A thread-safe count for handlers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
