import Foundation
import GRDB
import Logging
import Metrics
import ServiceLifecycle
import YunzhenQueue

/// Moves committed outbox rows to the service's topic, oldest first, as many at a time as are waiting (they go out
/// with one `fdatasync`), and deletes them once the topic has made them durable.
///
/// Each record carries its outbox row id as the producer sequence. On start the relay takes the last sequence
/// found in the topic's tail as already published, so a crash between the append and the delete neither loses
/// nor duplicates an event.
public final class OutboxRelay: Service, @unchecked Sendable {
    private let database: any DatabaseWriter
    private let writer: TopicWriter
    private let logger: Logger
    private let batchSize: Int
    private let signal = WakeSignal()
    private let batchSizes: Recorder
    private let published: Counter

    public init(database: any DatabaseWriter, writer: TopicWriter, logger: Logger, batchSize: Int = 10_000) {
        self.database = database
        self.writer = writer
        self.logger = logger
        self.batchSize = batchSize
        batchSizes = Recorder(label: "yunzhen_queue_relay_batch_size", dimensions: [("topic", writer.topic)])
        published = Counter(label: "yunzhen_queue_published_total", dimensions: [("topic", writer.topic)])
    }

    public func run() async throws {
        // Rings after every committed transaction that touched the outbox.
        let observation = DatabaseRegionObservation(tracking: Table(Outbox.table))
        let cancellable = observation.start(in: database) { [logger] error in
            logger.error("outbox observation failed", metadata: ["error": "\(error)"])
        } onChange: { [signal] _ in
            signal.ring()
        }
        defer { cancellable.cancel() }

        var lastPublished = writer.recoveredProducerSequence ?? 0
        try await deletePublished(upTo: lastPublished)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                lastPublished = try await relayOnce(after: lastPublished)
                if try await hasPending(after: lastPublished) { continue }
            } catch {
                logger.error(
                    "outbox relay failed; retrying", metadata: ["topic": "\(writer.topic)", "error": "\(error)"])
            }
            // The observation rings on commits; the timeout is a safety net (and the retry delay after an error).
            await signal.wait(timeout: .milliseconds(500))
        }
        // Publish what committed before the stop was asked for.
        _ = try? await relayOnce(after: lastPublished)
    }

    /// Appends the next batch of pending rows; returns the last sequence now durable in the topic. Rows are
    /// always chosen after `lastPublished`, never by their presence in the outbox, so a row whose delete failed
    /// is not sent again.
    @discardableResult
    func relayOnce(after lastPublished: UInt64) async throws -> UInt64 {
        let rows = try await database.read { [batchSize] db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, event FROM \(Outbox.table) WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [lastPublished, batchSize]
            )
        }
        guard let last = rows.last else { return lastPublished }
        let entries = rows.map { row in
            TopicWriter.Entry(producerSequence: UInt64(row["id"] as Int64), payload: Array(row["event"] as Data))
        }
        _ = try await writer.append(entries)
        batchSizes.record(entries.count)
        published.increment(by: entries.count)
        let newest = UInt64(last["id"] as Int64)
        // The rows are in the topic now, whatever happens next: a failed delete only leaves rows that the next
        // pass (or the next start, from the topic's tail) knows to skip.
        try? await deletePublished(upTo: newest)
        return newest
    }

    private func hasPending(after sequence: UInt64) async throws -> Bool {
        try await database.read { db in
            try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM \(Outbox.table) WHERE id > ?)", arguments: [sequence]) ?? false
        }
    }

    private func deletePublished(upTo sequence: UInt64) async throws {
        guard sequence > 0 else { return }
        try await database.write { db in
            try db.execute(sql: "DELETE FROM \(Outbox.table) WHERE id <= ?", arguments: [sequence])
        }
    }
}
