import Foundation
import Logging
import Testing
import YunzhenMessaging
import YunzhenQueue
import YunzhenTesting

@Suite struct RetentionTests {
    static func fill(_ directory: URL, records: Int) async throws {
        let writer = try TopicWriter.open(directory: directory, topic: "reports", options: .init(segmentBytes: 4096))
        defer { writer.close() }
        let payload = [UInt8](repeating: 0x20, count: 200)
        _ = try await writer.append((0..<records).map { .init(producerSequence: UInt64($0), payload: payload) })
    }

    static func segments(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".log") }.sorted()
    }

    @Test func oldSegmentsGoOnceEveryConsumerPassedThem() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.fill(directory, records: 100)  // about 6 segments of 4 KiB
            let before = try Self.segments(directory)
            #expect(before.count > 3)
            ConsumerPositions.record(40, consumer: "consult-reports", topicDirectory: directory)
            let report = TopicRetention.enforce(
                RetentionPolicy(maximumAge: .seconds(3600), maximumBytes: 0, hardLimitBytes: 1 << 30),
                topicDirectory: directory
            )
            #expect(!report.removedSegments.isEmpty)
            #expect(report.consumersCutOff.isEmpty)
            #expect(report.heldForConsumers == 1)
            // What the consumer still needs is all there.
            let reader = try TopicReader(directory: directory, from: 40)
            #expect(try reader.next(limit: 1000).records.map(\.offset) == Array(40..<100))
            // The segment being written is never removed.
            #expect(try Self.segments(directory).last == before.last)
        }
    }

    @Test func theHardLimitRemovesEvenUnreadSegmentsAndNamesTheConsumer() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.fill(directory, records: 100)
            ConsumerPositions.record(3, consumer: "followup-reports", topicDirectory: directory)
            let report = TopicRetention.enforce(
                RetentionPolicy(maximumAge: .seconds(3600), maximumBytes: 0, hardLimitBytes: 0),
                topicDirectory: directory
            )
            #expect(report.consumersCutOff == ["followup-reports": 3])
            #expect(try Self.segments(directory).count == 1)
        }
    }

    @Test func nothingGoesWithinTheLimits() async throws {
        try await withTemporaryDirectory { directory in
            try await Self.fill(directory, records: 100)
            let before = try Self.segments(directory)
            let report = TopicRetention.enforce(RetentionPolicy(), topicDirectory: directory)
            #expect(report.removedSegments.isEmpty)
            #expect(try Self.segments(directory) == before)
        }
    }
}

@Suite struct RetentionServiceTests {
    @Test func cuttingOffAConsumerRaisesTheAlarm() async throws {
        try await withTemporaryDirectory { directory in
            try await RetentionTests.fill(directory, records: 100)
            ConsumerPositions.record(0, consumer: "consult-reports", topicDirectory: directory)
            let alarms = AlarmLog()
            let service = RetentionService(
                topic: "reports",
                topicDirectory: directory,
                policy: RetentionPolicy(maximumAge: .seconds(3600), maximumBytes: 0, hardLimitBytes: 0),
                interval: .milliseconds(10),
                logger: Logger(label: "retention"),
                onAlarm: { alarms.append($0) }
            )
            let task = Task { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(5)
            while alarms.all.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            task.cancel()
            _ = try? await task.value
            let first = try #require(alarms.all.first ?? nil)
            #expect(first.contains("consult-reports"))
        }
    }
}

final class AlarmLog: @unchecked Sendable {
    private let lock = NSLock()
    private var alarms: [String?] = []
    var all: [String?] { lock.withLock { alarms } }
    func append(_ alarm: String?) { lock.withLock { alarms.append(alarm) } }
}
