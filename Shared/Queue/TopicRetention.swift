import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Removes a topic's old segments, like Kafka's retention, but never one that a known consumer still needs unless
/// the topic outgrew its hard limit, and then it says so loudly.
///
/// Consumers make themselves known by keeping their next offset in `<topic>/consumers/<name>`
/// (`ConsumerPositions`); only sealed segments (not the one being written) are ever removed.
public struct RetentionPolicy: Sendable, Equatable {
    /// Segments whose newest record is older than this may go.
    public var maximumAge: Duration
    /// Beyond this many bytes the oldest segments may go.
    public var maximumBytes: Int64
    /// Beyond this many bytes the oldest segments go even if a consumer has not read them: that consumer loses
    /// events, and the report says which.
    public var hardLimitBytes: Int64

    public init(
        maximumAge: Duration = .seconds(7 * 24 * 3600), maximumBytes: Int64 = 10 << 30, hardLimitBytes: Int64 = 20 << 30
    ) {
        self.maximumAge = maximumAge
        self.maximumBytes = maximumBytes
        self.hardLimitBytes = hardLimitBytes
    }
}

public struct RetentionReport: Sendable, Equatable {
    /// First offsets of the segments removed.
    public var removedSegments: [UInt64] = []
    /// Consumers that lost events to the hard limit, with the offset they were at.
    public var consumersCutOff: [String: UInt64] = [:]
    /// Segments kept only because a consumer has not read them yet, although policy would remove them.
    public var heldForConsumers: Int = 0
}

/// Where each consumer of a topic stands, as the consumers themselves last wrote it.
public enum ConsumerPositions {
    static func directory(_ topicDirectory: URL) -> URL { topicDirectory.appendingPathComponent("consumers") }

    /// Records that `consumer` will next read `offset` (after its transaction committed; not synced: a stale value
    /// only makes retention keep more).
    public static func record(_ offset: UInt64, consumer: String, topicDirectory: URL) {
        let folder = directory(topicDirectory)
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let safe = String(consumer.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        var value = offset.littleEndian
        let data = Data(bytes: &value, count: 8)
        try? data.write(to: folder.appendingPathComponent(safe), options: .atomic)
    }

    public static func all(topicDirectory: URL) -> [String: UInt64] {
        let folder = directory(topicDirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var positions: [String: UInt64] = [:]
        for name in names where !name.hasPrefix(".") {
            guard let data = try? Data(contentsOf: folder.appendingPathComponent(name)), data.count == 8 else {
                continue
            }
            positions[name] = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
        return positions
    }
}

public enum TopicRetention {
    /// Applies `policy` to the topic in `topicDirectory` as of `now`.
    public static func enforce(
        _ policy: RetentionPolicy,
        topicDirectory: URL,
        now: Date = Date()
    ) -> RetentionReport {
        var report = RetentionReport()
        let segments = SegmentFiles.segments(in: topicDirectory)
        guard segments.count > 1 else { return report }
        let consumers = ConsumerPositions.all(topicDirectory: topicDirectory)
        struct Sealed {
            let first: UInt64
            let end: UInt64
            let bytes: Int64
            let modified: Date
        }
        var sealed: [Sealed] = []
        for (index, first) in segments.dropLast().enumerated() {
            let path = topicDirectory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path
            let attributes = (try? FileManager.default.attributesOfItem(atPath: path)) ?? [:]
            sealed.append(
                Sealed(
                    first: first,
                    end: segments[index + 1],
                    bytes: (attributes[.size] as? Int64) ?? 0,
                    modified: (attributes[.modificationDate] as? Date) ?? now
                )
            )
        }
        let activeBytes = sealedBytes(topicDirectory, segments.last!)
        var total = sealed.reduce(activeBytes) { $0 + $1.bytes }
        for segment in sealed {
            let tooOld = now.timeIntervalSince(segment.modified) > Double(policy.maximumAge.components.seconds)
            let tooBig = total > policy.maximumBytes
            guard tooOld || tooBig else { break }
            let behind = consumers.filter { $0.value < segment.end }
            if !behind.isEmpty && total <= policy.hardLimitBytes {
                report.heldForConsumers += 1
                break
            }
            for (name, offset) in behind where report.consumersCutOff[name] == nil {
                report.consumersCutOff[name] = offset
            }
            remove(segment.first, in: topicDirectory)
            report.removedSegments.append(segment.first)
            total -= segment.bytes
        }
        return report
    }

    private static func sealedBytes(_ directory: URL, _ first: UInt64) -> Int64 {
        let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path
        return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int64) ?? 0
    }

    private static func remove(_ first: UInt64, in directory: URL) {
        unlink(directory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path)
        unlink(directory.appendingPathComponent(SegmentFiles.indexName(firstOffset: first)).path)
    }
}
