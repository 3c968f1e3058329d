import Foundation
import Logging
import Testing
import YunzhenQueue
import YunzhenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The topic log on real files: appends, segments, the writer lock, recovery from torn and damaged records.
@Suite struct TopicLogTests {
    static func payload(_ index: Int) -> [UInt8] {
        Array(#"{"specversion":"1.0","type":"registration.appointment-booked.v1","id":"\#(index)"}"#.utf8)
    }

    static func readAll(_ directory: URL, from offset: UInt64 = 0) throws -> TopicReader.Batch {
        let reader = try TopicReader(directory: directory, from: offset)
        var all = TopicReader.Batch()
        while true {
            let batch = try reader.next(limit: 500)
            if batch.records.isEmpty && batch.quarantined.isEmpty { return all }
            all.records += batch.records
            all.quarantined += batch.quarantined
        }
    }

    @Test func concurrentAppendsAreDurableInOrderAndReadBack() async throws {
        try await withTemporaryDirectory { directory in
            let writer = try TopicWriter.open(directory: directory, topic: "registration")
            defer { writer.close() }
            let offsets = try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for publisher in 0..<8 {
                    group.addTask {
                        var mine: [UInt64] = []
                        for index in 0..<50 {
                            let sequence = UInt64(publisher * 1000 + index)
                            mine += try await writer.append([
                                .init(producerSequence: sequence, payload: Self.payload(Int(sequence)))
                            ])
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [UInt64]()) { $0 += $1 }
            }
            #expect(offsets.sorted() == Array(0..<400))
            #expect(writer.durableEnd == 400)
            let read = try Self.readAll(directory)
            #expect(read.records.map(\.offset) == Array(0..<400))
            #expect(read.quarantined.isEmpty)
            for record in read.records {
                #expect(record.payload == Self.payload(Int(record.producerSequence)))
            }
        }
    }

    @Test func segmentsRollAndAReaderCanStartAnywhere() async throws {
        try await withTemporaryDirectory { directory in
            let writer = try TopicWriter.open(
                directory: directory,
                topic: "reports",
                options: .init(segmentBytes: 4096, indexInterval: 512)
            )
            defer { writer.close() }
            _ = try await writer.append(
                (0..<300).map { .init(producerSequence: UInt64($0), payload: Self.payload($0)) })
            let segments = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
                $0.hasSuffix(".log")
            }
            #expect(segments.count > 5)
            #expect(segments.contains("00000000000000000000.log"))
            #expect(try Self.readAll(directory).records.map(\.offset) == Array(0..<300))
            #expect(try Self.readAll(directory, from: 217).records.map(\.offset) == Array(217..<300))
        }
    }

    @Test func aSecondWriterIsRefusedAtOnce() async throws {
        try await withTemporaryDirectory { directory in
            let first = try TopicWriter.open(directory: directory, topic: "consult")
            #expect(
                throws: QueueError.topicLocked(
                    topic: "consult", path: directory.appendingPathComponent("writer.lock").path)
            ) {
                try TopicWriter.open(directory: directory, topic: "consult")
            }
            first.close()
        }
    }

    @Test func reopeningContinuesOffsetsAndKnowsTheLastProducerSequence() async throws {
        try await withTemporaryDirectory { directory in
            let first = try TopicWriter.open(directory: directory, topic: "followup")
            #expect(first.recoveredProducerSequence == nil)
            _ = try await first.append([
                .init(producerSequence: 41, payload: Self.payload(41)),
                .init(producerSequence: 42, payload: Self.payload(42)),
            ])
            first.close()
            let second = try await Self.reopen(directory, topic: "followup")
            defer { second.close() }
            #expect(second.recoveredProducerSequence == 42)
            #expect(try await second.append([.init(producerSequence: 43, payload: Self.payload(43))]) == [2])
        }
    }

    @Test func aTornLastRecordIsCutAndAppendingCarriesOn() async throws {
        try await withTemporaryDirectory { directory in
            let first = try TopicWriter.open(directory: directory, topic: "screening")
            _ = try await first.append((0..<5).map { .init(producerSequence: UInt64($0), payload: Self.payload($0)) })
            first.close()
            // A crash in the middle of writing a record: its header and half its payload reached the disk.
            var torn: [UInt8] = []
            RecordFormat.encode(offset: 5, producerSequence: 5, payload: Self.payload(5), into: &torn)
            let end = try Self.endOfRecords(directory)
            try Self.overwrite(directory, at: end, with: Array(torn.prefix(torn.count / 2)))

            let second = try await Self.reopen(directory, topic: "screening")
            defer { second.close() }
            #expect(second.recovery.cutBytes > 0)
            #expect(second.recoveredProducerSequence == 4)
            #expect(try await second.append([.init(producerSequence: 6, payload: Self.payload(6))]) == [5])
            let read = try Self.readAll(directory)
            #expect(read.records.map(\.producerSequence) == [0, 1, 2, 3, 4, 6])
            #expect(read.quarantined.isEmpty)
        }
    }

    @Test func aFlippedBitInTheMiddleIsQuarantinedAndEverythingElseDelivered() async throws {
        try await withTemporaryDirectory { directory in
            let writer = try TopicWriter.open(directory: directory, topic: "registration")
            _ = try await writer.append((0..<10).map { .init(producerSequence: UInt64($0), payload: Self.payload($0)) })
            writer.close()
            // Flip one bit in the payload of record 4, and another in the length field of record 7.
            let positions = try Self.recordPositions(directory)
            try Self.flipBit(directory, at: positions[4] + RecordFormat.headerSize + 10)
            try Self.flipBit(directory, at: positions[7] + 5)

            let read = try Self.readAll(directory)
            #expect(read.quarantined == [4, 7])
            #expect(read.records.map(\.offset) == [0, 1, 2, 3, 5, 6, 8, 9])

            let reopened = try await Self.reopen(directory, topic: "registration")
            defer { reopened.close() }
            #expect(reopened.recovery.quarantinedPositions == [positions[4], positions[7]])
            #expect(reopened.recoveredProducerSequence == 9)
        }
    }

    @Test func readersSeeOnlyWhatIsDurable() async throws {
        try await withTemporaryDirectory { directory in
            let writer = try TopicWriter.open(directory: directory, topic: "consult")
            defer { writer.close() }
            _ = try await writer.append([.init(producerSequence: 1, payload: Self.payload(1))])
            // Bytes that reach the file without the writer's commit (as during a write in progress) stay unseen.
            var pending: [UInt8] = []
            RecordFormat.encode(offset: 1, producerSequence: 2, payload: Self.payload(2), into: &pending)
            try Self.overwrite(directory, at: try Self.endOfRecords(directory), with: pending)
            #expect(try Self.readAll(directory).records.map(\.offset) == [0])
        }
    }

    @Test func indexEntriesOfRecordsLostInACrashDoNotMisleadReaders() async throws {
        try await withTemporaryDirectory { directory in
            let first = try TopicWriter.open(
                directory: directory, topic: "reports", options: .init(indexInterval: 64)
            )
            _ = try await first.append((0..<20).map { .init(producerSequence: UInt64($0), payload: Self.payload($0)) })
            first.close()
            // The power failed: records 10… never reached the disk, though the index (not synced) did.
            let positions = try Self.recordPositions(directory)
            try Self.overwrite(directory, at: positions[10], with: [UInt8](repeating: 0, count: 8192))

            let second = try await Self.reopen(directory, topic: "reports")
            defer { second.close() }
            #expect(second.recoveredProducerSequence == 9)
            // New records 10… are longer, so they sit at other positions than the lost ones did.
            let longer = (10..<20).map { index in
                TopicWriter.Entry(
                    producerSequence: UInt64(100 + index),
                    payload: Self.payload(index) + Array(repeating: 0x20, count: 37))
            }
            #expect(try await second.append(longer) == Array(10..<20))
            let read = try Self.readAll(directory, from: 15)
            #expect(read.quarantined.isEmpty)
            #expect(read.records.map(\.offset) == Array(15..<20))
            #expect(read.records.map(\.producerSequence) == Array(115..<120))
        }
    }

    // MARK: helpers acting on the files as a crash or a bad disk would

    /// Opens the topic again, waiting for the previous writer's thread to release the lock.
    static func reopen(_ directory: URL, topic: String) async throws -> TopicWriter {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let outcome = Result { try TopicWriter.open(directory: directory, topic: topic) }
            if case .success(let writer) = outcome { return writer }
            let stillLocked = if case .failure(QueueError.topicLocked) = outcome { true } else { false }
            guard stillLocked, ContinuousClock.now < deadline else { return try outcome.get() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func segmentPath(_ directory: URL) -> String {
        directory.appendingPathComponent("00000000000000000000.log").path
    }

    static func recordPositions(_ directory: URL) throws -> [Int] {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segmentPath(directory))))
        var positions: [Int] = []
        var position = 0
        bytes.withUnsafeBytes { bytes in
            while case .record(_, let next) = RecordFormat.parse(bytes, at: position) {
                positions.append(position)
                position = next
            }
        }
        return positions
    }

    static func endOfRecords(_ directory: URL) throws -> Int {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segmentPath(directory))))
        var position = 0
        bytes.withUnsafeBytes { bytes in
            while case .record(_, let next) = RecordFormat.parse(bytes, at: position) { position = next }
        }
        return position
    }

    static func overwrite(_ directory: URL, at position: Int, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: segmentPath(directory)))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(position))
        try handle.write(contentsOf: Data(bytes))
    }

    static func flipBit(_ directory: URL, at position: Int) throws {
        let url = URL(fileURLWithPath: segmentPath(directory))
        var bytes = try Array(Data(contentsOf: url))
        bytes[position] ^= 0x10
        try overwrite(directory, at: position, with: [bytes[position]])
    }
}
