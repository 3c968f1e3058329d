import Foundation
import Logging
import Metrics

#if canImport(Glibc)
    import Glibc
#endif

/// The one writer of a topic. Appends go to a dedicated thread that writes everything pending with one
/// `fdatasync` (group commit) and only then acknowledges: no caller is told "done" before its bytes are durable.
///
/// Opening takes the topic's lock (a second writer fails at once), verifies the tail of the last segment (cutting
/// a torn record left by a crash, quarantining damage that intact records follow) and finds the last producer
/// sequence, so a relay that restarts knows what it already appended.
public final class TopicWriter: @unchecked Sendable {
    public struct Options: Sendable {
        /// A segment is preallocated to this size and a new one begins when a record would not fit.
        public var segmentBytes: Int
        /// An index entry is written every this many bytes of records.
        public var indexInterval: Int

        public init(segmentBytes: Int = 64 * 1024 * 1024, indexInterval: Int = 4096) {
            self.segmentBytes = segmentBytes
            self.indexInterval = indexInterval
        }
    }

    /// One record to append: the producer's sequence (its outbox row) and the payload.
    public struct Entry: Sendable {
        public let producerSequence: UInt64
        public let payload: [UInt8]

        public init(producerSequence: UInt64, payload: [UInt8]) {
            self.producerSequence = producerSequence
            self.payload = payload
        }
    }

    public let topic: String
    public let directory: URL
    public let options: Options
    /// The highest producer sequence found in the topic when it was opened (nil for an empty topic).
    public let recoveredProducerSequence: UInt64?
    /// What recovery found and did, for the log and metrics.
    public let recovery: Recovery

    public struct Recovery: Sendable, Equatable {
        /// Bytes of a torn last record that were cut.
        public var cutBytes: Int = 0
        /// Positions of damaged stretches in the last segment that intact records follow.
        public var quarantinedPositions: [Int] = []
    }

    private let logger: Logger
    private let lockDescriptor: Int32
    private let appended: Counter
    private let groupSizes: Recorder
    private let syncLatency: Timer
    private let failures: Counter
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending: [(entries: [Entry], continuation: UnsafeContinuation<[UInt64], any Error>)] = []
    private var closing = false
    private var failure: QueueError?
    /// How many callers the writer expects in its next group: those it just acknowledged (likely to append again
    /// at once) plus those that arrived while it synced. Appenders wake the writer on the first arrival and when
    /// this many are waiting, not on every append.
    private var expectedCallers = 1
    // Touched by the writer thread only (and by `open` before the thread starts).
    private var segmentFirstOffset: UInt64
    private var segmentDescriptor: Int32
    private var indexDescriptor: Int32
    private var headDescriptor: Int32
    private var position: Int
    private var nextOffset: UInt64
    private var lastIndexedPosition: Int
    /// Whether the spare for the next segment has been asked for since the last roll.
    private var spareRequested = false
    /// Makes spare segments; `write` waits for it before a roll, so the two never race for the spare's name.
    private let spareQueue = DispatchQueue(label: "yunzhen-queue-spare")
    /// Entered while the writer's thread runs; `close` waits on it.
    private let running = DispatchGroup()
    /// Set when a write or sync failed after bytes were written: only reopening (recovery) may continue.
    private var broken = false

    /// Offsets below this are durable (acknowledged); the next record gets this offset.
    public var durableEnd: UInt64 { condition.withLock { committedEnd } }
    private var committedEnd: UInt64

    public static func open(
        directory: URL,
        topic: String,
        options: Options = Options(),
        logger: Logger = Logger(label: "queue")
    ) throws(QueueError) -> TopicWriter {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory.path, operation: "create directory", errno: errno)
        }
        let lockPath = directory.appendingPathComponent("writer.lock").path
        let lock = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard lock >= 0 else { throw .fromErrno(errno, path: lockPath, operation: "open") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(lock)
            if code == EWOULDBLOCK { throw .topicLocked(topic: topic, path: lockPath) }
            throw .fromErrno(code, path: lockPath, operation: "flock")
        }
        do {
            return try TopicWriter(directory: directory, topic: topic, options: options, logger: logger, lock: lock)
        } catch {
            Glibc.close(lock)
            throw error
        }
    }

    private init(directory: URL, topic: String, options: Options, logger: Logger, lock: Int32) throws(QueueError) {
        self.topic = topic
        self.directory = directory
        self.options = options
        self.logger = logger
        self.lockDescriptor = lock
        let dimensions = [("topic", topic)]
        appended = Counter(label: "yunzhen_queue_appended_records_total", dimensions: dimensions)
        groupSizes = Recorder(label: "yunzhen_queue_group_commit_records", dimensions: dimensions)
        syncLatency = Timer(
            label: "yunzhen_queue_fdatasync_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        failures = Counter(label: "yunzhen_queue_append_failures_total", dimensions: dimensions)

        var segments = SegmentFiles.segments(in: directory)
        if segments.isEmpty {
            segments = [0]
            try Self.createSegment(in: directory, firstOffset: 0, bytes: options.segmentBytes)
        }
        let last = segments.last!
        let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: last)).path
        let bytes = try SegmentFiles.readAll(path)
        let scan = SegmentScan(bytes)
        var recovery = Recovery()
        recovery.quarantinedPositions = scan.quarantined.map(\.position)

        segmentFirstOffset = last
        segmentDescriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard segmentDescriptor >= 0 else { throw .fromErrno(errno, path: path, operation: "open") }
        if scan.tornTail {
            // Zero the torn record so no later scan mistakes its remains for data.
            let garbageEnd = bytes.withUnsafeBytes { RecordFormat.endOfNonZero($0, from: scan.end) }
            recovery.cutBytes = garbageEnd - scan.end
            let zeros = [UInt8](repeating: 0, count: recovery.cutBytes)
            try SegmentFiles.write(segmentDescriptor, zeros, at: scan.end, path: path)
            guard fdatasync(segmentDescriptor) == 0 else { throw .fromErrno(errno, path: path, operation: "fdatasync") }
            logger.warning(
                "cut a torn record at the end of the topic",
                metadata: ["topic": "\(topic)", "position": "\(scan.end)", "bytes": "\(recovery.cutBytes)"]
            )
        }
        for damage in scan.quarantined {
            logger.error(
                "quarantined a damaged record",
                metadata: ["topic": "\(topic)", "segment": "\(last)", "position": "\(damage.position)"]
            )
        }
        position = scan.end
        lastIndexedPosition = scan.end
        if let lastRecord = scan.records.last {
            nextOffset = lastRecord.record.offset + 1
            recoveredProducerSequence = lastRecord.record.producerSequence
        } else if segments.count > 1 {
            // A segment rolled but never written: the previous one holds the last record.
            let previous = segments[segments.count - 2]
            let previousBytes = try SegmentFiles.readAll(
                directory.appendingPathComponent(SegmentFiles.logName(firstOffset: previous)).path
            )
            let previousRecord = SegmentScan(previousBytes).records.last?.record
            nextOffset = last
            recoveredProducerSequence = previousRecord?.producerSequence
        } else {
            nextOffset = last
            recoveredProducerSequence = nil
        }
        committedEnd = nextOffset
        self.recovery = recovery

        let indexPath = directory.appendingPathComponent(SegmentFiles.indexName(firstOffset: last)).path
        // Index entries past the recovered end describe records that were cut: keep only those before it.
        if let index = try? SegmentFiles.readAll(indexPath), index.count >= 8 {
            let kept = stride(from: 0, to: index.count - index.count % 8, by: 8).filter { at in
                index.withUnsafeBytes {
                    Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
                }
                    < scan.end
            }
            if kept.count * 8 != index.count {
                let rewritten = kept.flatMap { Array(index[$0..<($0 + 8)]) }
                try? Data(rewritten).write(to: URL(fileURLWithPath: indexPath), options: .atomic)
            }
        }
        indexDescriptor = Glibc.open(indexPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        let headPath = directory.appendingPathComponent("head").path
        headDescriptor = Glibc.open(headPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard indexDescriptor >= 0, headDescriptor >= 0 else {
            throw .fromErrno(errno, path: indexPath, operation: "open")
        }
        writeHead()

        let thread = Thread { [self] in run() }
        thread.name = "yunzhen-queue-\(topic)"
        running.enter()
        thread.start()
    }

    /// Appends `entries` in order; returns their offsets once they are durable.
    public func append(_ entries: [Entry]) async throws -> [UInt64] {
        let limit = options.segmentBytes - RecordFormat.headerSize
        if let large = entries.first(where: { $0.payload.count > limit }) {
            throw QueueError.recordTooLarge(bytes: large.payload.count, limit: limit)
        }
        guard !entries.isEmpty else { return [] }
        return try await withUnsafeThrowingContinuation { continuation in
            condition.withLock {
                if let failure {
                    continuation.resume(throwing: failure)
                } else if closing {
                    continuation.resume(throwing: QueueError.closed)
                } else {
                    pending.append((entries, continuation))
                    if pending.count == 1 || pending.count >= expectedCallers { condition.signal() }
                }
            }
        }
    }

    /// Finishes what is pending, stops the thread and releases the lock.
    /// Returns when the writer's thread (and any spare segment in the making) has finished, so nothing of the
    /// writer touches the disk afterwards. Safe to call more than once.
    public func close() {
        condition.withLock {
            closing = true
            condition.signal()
        }
        running.wait()
    }

    private func run() {
        var linger = Duration.zero
        while true {
            let batch: [(entries: [Entry], continuation: UnsafeContinuation<[UInt64], any Error>)]
            condition.lock()
            while pending.isEmpty && !closing { condition.wait() }
            // Group commit works only if a group holds everyone who is appending. Right after an acknowledgement
            // the callers it released are still on their way back; taking whoever is here at that instant would
            // split them into a group of one or two and a group of the rest, each paying a full fdatasync. So wait
            // a little (at most half the last sync) for the expected callers to gather. A lone caller never waits.
            if expectedCallers > 1 && pending.count < expectedCallers && linger > .zero && !closing {
                let deadline = Date(timeIntervalSinceNow: Double(linger.components.attoseconds) / 1e18)
                while pending.count < expectedCallers && !closing && condition.wait(until: deadline) {}
            }
            batch = pending
            pending.removeAll(keepingCapacity: true)
            let stop = closing && batch.isEmpty
            condition.unlock()
            if stop { break }

            do {
                let syncStarted = ContinuousClock.now
                let offsets = try write(batch.map(\.entries))
                linger = min((ContinuousClock.now - syncStarted) / 2, .microseconds(500))
                let records = offsets.reduce(0) { $0 + $1.count }
                appended.increment(by: records)
                groupSizes.record(records)
                condition.withLock {
                    committedEnd = nextOffset
                    expectedCallers = batch.count + pending.count
                }
                for (item, itemOffsets) in zip(batch, offsets) { item.continuation.resume(returning: itemOffsets) }
            } catch {
                logger.error("append failed", metadata: ["topic": "\(topic)", "error": "\(error)"])
                failures.increment()
                if broken { condition.withLock { failure = error } }
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
        Glibc.close(segmentDescriptor)
        Glibc.close(indexDescriptor)
        Glibc.close(headDescriptor)
        spareQueue.sync {}
        Glibc.close(lockDescriptor)
        running.leave()
    }

    /// A stretch of encoded records bound for one segment.
    private struct Chunk {
        var segmentFirstOffset: UInt64
        var startPosition: Int
        var bytes: [UInt8] = []
        var recordStarts: [(offset: UInt64, position: Int)] = []
    }

    /// Writes one group and syncs it; returns the offsets of each caller's entries.
    ///
    /// Every new segment the group needs is created (preallocated) before a byte is written, so a full disk fails
    /// the group with nothing written. A failure after that (an I/O error, a failed sync) leaves the file in a
    /// state only recovery can judge, so the writer refuses further appends until it is opened again.
    private func write(_ groups: [[Entry]]) throws(QueueError) -> [[UInt64]] {
        var chunks = [Chunk(segmentFirstOffset: segmentFirstOffset, startPosition: position)]
        var offsets: [[UInt64]] = []
        var offset = nextOffset
        for entries in groups {
            var assigned: [UInt64] = []
            for entry in entries {
                let size = RecordFormat.headerSize + entry.payload.count
                if chunks[chunks.count - 1].startPosition + chunks[chunks.count - 1].bytes.count + size
                    > options.segmentBytes
                {
                    chunks.append(Chunk(segmentFirstOffset: offset, startPosition: 0))
                }
                let current = chunks.count - 1
                chunks[current].recordStarts.append(
                    (offset, chunks[current].startPosition + chunks[current].bytes.count))
                RecordFormat.encode(
                    offset: offset,
                    producerSequence: entry.producerSequence,
                    payload: entry.payload,
                    into: &chunks[current].bytes
                )
                assigned.append(offset)
                offset += 1
            }
            offsets.append(assigned)
        }
        var created: [UInt64] = []
        if chunks.count > 1 { spareQueue.sync {} }
        for chunk in chunks.dropFirst() {
            do {
                try Self.createSegment(
                    in: directory, firstOffset: chunk.segmentFirstOffset, bytes: options.segmentBytes)
                created.append(chunk.segmentFirstOffset)
            } catch {
                for first in created {
                    unlink(directory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path)
                }
                throw error
            }
        }
        do throws(QueueError) {
            for (index, chunk) in chunks.enumerated() {
                if index > 0 { try roll(to: chunk.segmentFirstOffset) }
                try flush(chunk.bytes, at: chunk.startPosition, records: chunk.recordStarts)
            }
            let syncStarted = ContinuousClock.now
            guard fdatasync(segmentDescriptor) == 0 else {
                throw .fromErrno(errno, path: segmentPath, operation: "fdatasync")
            }
            syncLatency.recordNanoseconds(Int64((ContinuousClock.now - syncStarted) / .nanoseconds(1)))
        } catch {
            broken = true
            throw error
        }
        nextOffset = offset
        writeHead()
        if !spareRequested && position > options.segmentBytes / 2 {
            spareRequested = true
            prepareSpare()
        }
        return offsets
    }

    private var segmentPath: String {
        directory.appendingPathComponent(SegmentFiles.logName(firstOffset: segmentFirstOffset)).path
    }

    private func flush(_ buffer: [UInt8], at start: Int, records: [(offset: UInt64, position: Int)]) throws(QueueError)
    {
        guard !buffer.isEmpty else { return }
        try SegmentFiles.write(segmentDescriptor, buffer, at: start, path: segmentPath)
        position = start + buffer.count
        var entries: [UInt8] = []
        for record in records
        where record.position - lastIndexedPosition >= options.indexInterval || record.position == 0 {
            withUnsafeBytes(of: UInt32(record.offset - segmentFirstOffset).littleEndian) {
                entries.append(contentsOf: $0)
            }
            withUnsafeBytes(of: UInt32(record.position).littleEndian) { entries.append(contentsOf: $0) }
            lastIndexedPosition = record.position
        }
        // The index is a hint, rebuilt by a scan when it disagrees with the log: no sync needed.
        if !entries.isEmpty { _ = entries.withUnsafeBytes { Glibc.write(indexDescriptor, $0.baseAddress, $0.count) } }
    }

    /// Seals the current segment and moves to the (already created) one whose first record is `firstOffset`.
    private func roll(to firstOffset: UInt64) throws(QueueError) {
        guard fdatasync(segmentDescriptor) == 0 else {
            throw .fromErrno(errno, path: segmentPath, operation: "fdatasync")
        }
        let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: firstOffset)).path
        let descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw .fromErrno(errno, path: path, operation: "open") }
        let indexPath = directory.appendingPathComponent(SegmentFiles.indexName(firstOffset: firstOffset)).path
        let index = Glibc.open(indexPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        Glibc.close(segmentDescriptor)
        Glibc.close(indexDescriptor)
        segmentDescriptor = descriptor
        indexDescriptor = index
        segmentFirstOffset = firstOffset
        position = 0
        lastIndexedPosition = 0
        spareRequested = false
        logger.debug("rolled segment", metadata: ["topic": "\(topic)", "first_offset": "\(firstOffset)"])
    }

    /// Creates a zero-filled segment (see `SegmentFiles.createZeroFilled`), so running out of space shows when a
    /// segment starts, never midway through a record, and makes its directory entry durable. A spare made ahead by
    /// `prepareSpare` is renamed into place instead when there is one of the right size.
    private static func createSegment(in directory: URL, firstOffset: UInt64, bytes: Int) throws(QueueError) {
        let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: firstOffset)).path
        let spare = directory.appendingPathComponent(SegmentFiles.spareName).path
        var info = stat()
        if stat(spare, &info) == 0 && Int(info.st_size) == bytes && rename(spare, path) == 0 {
            SegmentFiles.syncDirectory(directory)
            return
        }
        let temporary = path + ".new"
        do {
            try SegmentFiles.createZeroFilled(temporary, bytes: bytes)
        } catch {
            unlink(temporary)
            // Named by the segment it was for, which is what an operator looks for.
            if case .diskFull = error { throw .diskFull(path: path) }
            throw error
        }
        // Renamed into place whole, so a crash never leaves a segment that is shorter than preallocated.
        guard rename(temporary, path) == 0 else { throw .fromErrno(errno, path: path, operation: "rename") }
        SegmentFiles.syncDirectory(directory)
    }

    /// Makes the next segment ahead of time on a thread of its own (called once the current segment is half
    /// full), so a roll only renames a file instead of stalling every publisher while megabytes of zeros are
    /// written. If it fails (a full disk) the roll makes the segment itself and reports the error to the caller.
    private func prepareSpare() {
        spareQueue.async { [directory, options, logger, topic] in
            let spare = directory.appendingPathComponent(SegmentFiles.spareName).path
            let temporary = spare + ".new"
            do {
                try SegmentFiles.createZeroFilled(temporary, bytes: options.segmentBytes)
                guard rename(temporary, spare) == 0 else {
                    throw QueueError.fromErrno(errno, path: spare, operation: "rename")
                }
            } catch {
                unlink(temporary)
                logger.warning(
                    "could not make the next segment ahead; the roll will try again",
                    metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    /// Tells readers how far the topic is durable (not synced: after a crash, recovery recomputes it).
    private func writeHead() {
        var value = nextOffset.littleEndian
        _ = pwrite(headDescriptor, &value, 8, 0)
    }
}
