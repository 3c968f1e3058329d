import ArgumentParser
import Foundation
import GRDB
import YunzhenContracts
import YunzhenMessaging
import YunzhenQueue

/// `yunzhen queue …`: look into the platform's queue on this host.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect topics, follow events, check consumers and dead letters.",
        subcommands: [Topics.self, Tail.self, Verify.self, Consumers.self, DeadLettersCommand.self]
    )

    struct DataOption: ParsableArguments {
        @Option(help: "Data root (default: $YUNZHEN_DATA, else .data/dev).")
        var data: String?

        var root: URL {
            URL(fileURLWithPath: data ?? ProcessInfo.processInfo.environment["YUNZHEN_DATA"] ?? ".data/dev")
                .standardizedFileURL
        }

        var queue: URL { root.appendingPathComponent("queue") }
    }

    struct Topics: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics with their size and offsets.")
        @OptionGroup var options: DataOption

        func run() throws {
            let topics = TopicInspector.topics(in: options.queue)
            guard !topics.isEmpty else {
                print("no topics under \(options.queue.path)")
                return
            }
            print(
                "topic".padding(toLength: 14, withPad: " ", startingAt: 0) + "segments      bytes   first  durable end")
            for topic in topics {
                print(
                    topic.topic.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + String(
                            format: "%8d %10lld %7llu %12llu", topic.segments, topic.bytes, topic.firstOffset,
                            topic.durableEnd)
                )
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a topic's events as JSON lines: {\"offset\", \"sequence\", \"event\"}.",
            discussion: "Pipe it into your own program: `yunzhen queue tail reports --follow | my-integration`."
        )
        @OptionGroup var options: DataOption
        @Argument(help: "The topic (a producing service's name).") var topic: String
        @Option(help: "Start at this offset (default: the last 10 events).") var from: UInt64?
        @Flag(help: "Keep printing new events as they become durable.") var follow = false

        func run() async throws {
            let directory = options.queue.appendingPathComponent(topic)
            guard FileManager.default.fileExists(atPath: directory.path) else {
                throw ValidationError("no topic \(topic) under \(options.queue.path)")
            }
            let probe = try TopicReader(directory: directory)
            let start = from ?? (probe.durableEnd > 10 ? probe.durableEnd - 10 : 0)
            let reader = try TopicReader(directory: directory, from: start)
            while true {
                let batch = try reader.next(limit: 1000)
                for offset in batch.quarantined {
                    FileHandle.standardError.write(
                        Data("yunzhen queue: offset \(offset) is damaged and skipped\n".utf8))
                }
                var lines = ""
                for record in batch.records {
                    let event = String(decoding: record.payload, as: UTF8.self)
                    lines +=
                        #"{"offset":\#(record.offset),"sequence":\#(record.producerSequence),"event":\#(event)}"# + "\n"
                }
                // Unbuffered, so a program reading the pipe sees each event as soon as it is durable.
                FileHandle.standardOutput.write(Data(lines.utf8))
                if batch.records.isEmpty && batch.quarantined.isEmpty {
                    guard follow else { return }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every segment and report damaged records, torn tails and gaps; exit 1 when damage is found."
        )
        @OptionGroup var options: DataOption
        @Argument(help: "Topics to verify (default: all).") var topics: [String] = []

        func run() throws {
            let names = topics.isEmpty ? TopicInspector.topics(in: options.queue).map(\.topic) : topics
            var damaged = false
            for name in names {
                for report in try TopicInspector.verify(topicDirectory: options.queue.appendingPathComponent(name)) {
                    let range = report.firstOffset.map { "\($0)…\(report.lastOffset ?? $0)" } ?? "empty"
                    var line = "\(name)/\(report.segment): \(report.records) records (\(range))"
                    if !report.damagedPositions.isEmpty { line += ", damaged at bytes \(report.damagedPositions)" }
                    if !report.gaps.isEmpty { line += ", missing offsets \(report.gaps.prefix(20))" }
                    if report.tornTailBytes > 0 {
                        line += ", torn tail of \(report.tornTailBytes) bytes (cut when its writer reopens)"
                    }
                    print(line)
                    damaged = damaged || !report.isHealthy
                }
            }
            if damaged { throw ExitCode(1) }
        }
    }

    struct Consumers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each service's consumers, their offsets and lag.")
        @OptionGroup var options: DataOption

        func run() throws {
            let ends = Dictionary(
                uniqueKeysWithValues: TopicInspector.topics(in: options.queue).map { ($0.topic, $0.durableEnd) })
            print("service       consumer                  topic          offset        lag")
            let sql = "SELECT consumer, topic, next_offset FROM queue_consumer_offset ORDER BY consumer"
            for (service, row) in try ServiceDatabases.rows(in: options.root, table: "queue_consumer_offset", sql: sql)
            {
                let topic: String = row["topic"]
                let offset = UInt64(row["next_offset"] as Int64)
                let lag = (ends[topic] ?? offset) > offset ? (ends[topic] ?? offset) - offset : 0
                print(
                    service.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + (row["consumer"] as String).padding(toLength: 26, withPad: " ", startingAt: 0)
                        + topic.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + String(format: "%6llu %10llu", offset, lag)
                )
            }
        }
    }

    struct DeadLettersCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dead-letters",
            abstract: "Events consumers gave up on: list them, or have their consumer retry them.",
            subcommands: [List.self, Retry.self],
            defaultSubcommand: List.self
        )

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List dead letters not yet retried.")
            @OptionGroup var options: DataOption

            func run() throws {
                let sql = "SELECT * FROM queue_dead_letter WHERE retried_at IS NULL ORDER BY id"
                for (service, row) in try ServiceDatabases.rows(in: options.root, table: "queue_dead_letter", sql: sql)
                {
                    let id: Int64 = row["id"]
                    let consumer: String = row["consumer"]
                    let topic: String = row["topic"]
                    let offset: Int64 = row["offset"]
                    let type: String? = row["event_type"]
                    let attempts: Int = row["attempts"]
                    let error: String = row["error"]
                    let requested = (row["retry_requested_at"] as Date?) == nil ? "" : " (retry requested)"
                    print(
                        "\(service.rawValue) #\(id) \(consumer) \(topic)@\(offset) \(type ?? "?") after \(attempts) attempts: \(error)\(requested)"
                    )
                }
            }
        }

        struct Retry: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Ask the consuming service to handle dead letters again, and report what happened.",
                discussion: """
                    Only the service that owns a consumer has its handler, so this marks the dead letters in that \
                    service's database and the running consumer retries them at its next poll. This is the one \
                    write the tool makes to a service's database. Exits 1 if any retry failed again or was not \
                    carried out within --wait seconds (is the service running?).
                    """
            )
            @OptionGroup var options: DataOption
            @Option(help: "The service whose consumer dead-lettered the events (e.g. screening).")
            var service: ServiceName
            @Argument(help: "The dead letter's id (from `yunzhen queue dead-letters`).")
            var id: Int64?
            @Flag(help: "Retry every pending dead letter of the service (or of --consumer).")
            var all = false
            @Option(help: "With --all: only this consumer's dead letters.")
            var consumer: String?
            @Option(help: "Seconds to wait for the consumer to report.")
            var wait: Double = 10

            func validate() throws {
                guard (id != nil) != all else { throw ValidationError("Give a dead letter's id or --all, not both.") }
                guard consumer == nil || all else { throw ValidationError("--consumer goes with --all.") }
            }

            func run() async throws {
                guard let database = try ServiceDatabases.openForRetry(service, in: options.root) else {
                    throw ValidationError("\(service.rawValue) has no database under \(options.root.path)")
                }
                let letters = DeadLetters(database: database)
                let ids: [Int64]
                do {
                    ids = try await letters.requestRetry(id: id, consumer: consumer)
                } catch DeadLetterError.notFound(let missing) {
                    throw ValidationError("\(service.rawValue) has no pending dead letter #\(missing)")
                }
                guard !ids.isEmpty else {
                    print("no pending dead letters")
                    return
                }
                print("asked \(service.rawValue) to retry \(ids.map { "#\($0)" }.joined(separator: ", "))")
                let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
                var outcomes: [Int64: DeadLetter] = [:]
                while outcomes.count < ids.count && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    for id in ids where outcomes[id] == nil {
                        if let letter = try await letters.find(id: id), letter.retryRequestedAt == nil {
                            outcomes[id] = letter
                        }
                    }
                }
                var failed = false
                for id in ids {
                    guard let letter = outcomes[id] else {
                        print("#\(id): not retried yet (is \(service.rawValue) running?); the request stays")
                        failed = true
                        continue
                    }
                    if letter.retriedAt != nil {
                        print("#\(id): handled")
                    } else {
                        print("#\(id): failed again after \(letter.attempts) attempts: \(letter.error)")
                        failed = true
                    }
                }
                if failed { throw ExitCode(1) }
            }
        }
    }
}

extension ServiceName: ExpressibleByArgument {}

/// Read-only access to the services' databases for inspection; the services stay their only writers of data.
enum ServiceDatabases {
    /// The one writable opening: marking dead letters for their consumer to retry.
    static func openForRetry(_ service: ServiceName, in root: URL) throws -> DatabaseQueue? {
        let path = root.appendingPathComponent("\(service.rawValue)/\(service.rawValue).sqlite").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    static func open(_ service: ServiceName, in root: URL) throws -> DatabaseQueue? {
        let path = root.appendingPathComponent("\(service.rawValue)/\(service.rawValue).sqlite").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// `sql`'s rows from every service whose database has `table`, in service order.
    static func rows(in root: URL, table: String, sql: String) throws -> [(ServiceName, Row)] {
        try ServiceName.allCases.flatMap { service -> [(ServiceName, Row)] in
            guard let database = try open(service, in: root) else { return [] }
            let rows = try database.read { db -> [Row] in
                guard try db.tableExists(table) else { return [] }
                return try Row.fetchAll(db, sql: sql)
            }
            return rows.map { (service, $0) }
        }
    }
}
