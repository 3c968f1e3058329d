// queue-soak: the producer and consumer processes of the queue's crash tests (Tests/e2e/test_queue_crash.py).
// The test kills them with SIGKILL at random instants and restarts them, then checks that every committed change
// was applied exactly once and nothing uncommitted was. Not a product executable.
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import YunzhenContracts
import YunzhenMessaging
import YunzhenQueue
import YunzhenStorage

/// The soak's event: "ledger row `number` was committed".
struct LedgerRowAdded: IntegrationEvent {
    static let eventType = "soak.ledger-row-added.v1"
    var number: Int
    var subject: String { "\(number)" }
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let count = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: queue-soak produce|consume DATA_DIR COUNT\n".utf8))
    exit(64)
}
let mode = arguments[1]
let data = URL(fileURLWithPath: arguments[2])
let topicDirectory = data.appendingPathComponent("queue/soak")
let logger = {
    var logger = Logger(label: "queue-soak-\(mode)")
    logger.logLevel = .warning
    return logger
}()

func runUntilDone(_ services: [any Service], done: @escaping @Sendable () async throws -> Bool) async throws {
    let group = ServiceGroup(services: services, logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        while try await !done() { try await Task.sleep(for: .milliseconds(20)) }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

switch mode {
case "produce":
    var migrator = DatabaseMigrator()
    migrator.registerMigration("ledger") { db in
        try db.create(table: "ledger") { $0.primaryKey("number", .integer) }
    }
    Outbox.registerMigration(in: &migrator)
    let database = try ServiceDatabase.open(directory: data, name: "producer", migrator: migrator, logger: logger)
    let writer = try TopicWriter.open(directory: topicDirectory, topic: "soak", logger: logger)
    let relay = OutboxRelay(database: database.writer, writer: writer, logger: logger, batchSize: 500)
    let producing = Task {
        while true {
            // Each change and its event commit together; a kill between transactions loses neither.
            let next = try await database.writer.write { db -> Int in
                let number = (try Int.fetchOne(db, sql: "SELECT coalesce(max(number), 0) FROM ledger") ?? 0) + 1
                guard number <= count else { return number }
                try db.execute(sql: "INSERT INTO ledger (number) VALUES (?)", arguments: [number])
                try Outbox.publish(LedgerRowAdded(number: number), source: "/soak", in: db)
                return number
            }
            if next > count { return }
        }
    }
    try await runUntilDone([relay]) {
        try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger") == count
                && Int.fetchOne(db, sql: "SELECT count(*) FROM queue_outbox") == 0
        }
    }
    try await producing.value
case "consume":
    var migrator = DatabaseMigrator()
    // No key on purpose: a duplicate application must be countable, not refused.
    migrator.registerMigration("applied") { db in
        try db.create(table: "applied") { $0.column("number", .integer).notNull() }
    }
    ConsumerSchema.registerMigration(in: &migrator)
    let database = try ServiceDatabase.open(directory: data, name: "consumer", migrator: migrator, logger: logger)
    let consumer = QueueConsumer(
        name: "soak",
        topic: "soak",
        topicDirectory: topicDirectory,
        eventTypes: [LedgerRowAdded.eventType],
        database: database.writer,
        logger: logger,
        pollInterval: .milliseconds(50)
    ) { event, db in
        let added = try event.decode(LedgerRowAdded.self)
        try db.execute(sql: "INSERT INTO applied (number) VALUES (?)", arguments: [added.data.number])
    }
    try await runUntilDone([consumer]) {
        try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT next_offset FROM queue_consumer_offset WHERE consumer = 'soak'") ?? 0
        } >= count
    }
default:
    FileHandle.standardError.write(Data("unknown mode \(mode)\n".utf8))
    exit(64)
}
