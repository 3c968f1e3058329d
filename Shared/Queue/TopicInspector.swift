import Foundation

/// Read-only views of topics on disk for operators (`yunzhen queue …`): sizes, offsets, verification.
public enum TopicInspector {
    public struct Summary: Sendable, Codable, Equatable {
        public var topic: String
        public var segments: Int
        /// Bytes on disk, preallocated space included.
        public var bytes: Int64
        public var firstOffset: UInt64
        /// Offsets below this are durable.
        public var durableEnd: UInt64
    }

    public struct SegmentReport: Sendable, Codable, Equatable {
        public var segment: String
        public var records: Int
        public var firstOffset: UInt64?
        public var lastOffset: UInt64?
        /// Byte positions of damaged stretches that intact records follow.
        public var damagedPositions: [Int]
        /// Bytes of a torn last record (a writer that crashed mid-write and has not reopened since).
        public var tornTailBytes: Int
        /// Offsets missing between this segment's records.
        public var gaps: [UInt64]

        public var isHealthy: Bool { damagedPositions.isEmpty && gaps.isEmpty }
    }

    /// Every topic under the queue folder (`<YUNZHEN_DATA>/queue`).
    public static func topics(in queueRoot: URL) -> [Summary] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: queueRoot.path)) ?? []
        return names.sorted().compactMap { name in
            let directory = queueRoot.appendingPathComponent(name)
            let segments = SegmentFiles.segments(in: directory)
            guard !segments.isEmpty else { return nil }
            let bytes = segments.reduce(Int64(0)) { total, first in
                let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
                return total + (size ?? 0)
            }
            return Summary(
                topic: name,
                segments: segments.count,
                bytes: bytes,
                firstOffset: segments.first ?? 0,
                durableEnd: SegmentFiles.readHead(in: directory) ?? 0
            )
        }
    }

    /// Reads every segment of a topic whole and reports damage, torn tails and gaps.
    public static func verify(topicDirectory: URL) throws(QueueError) -> [SegmentReport] {
        var reports: [SegmentReport] = []
        for first in SegmentFiles.segments(in: topicDirectory) {
            let name = SegmentFiles.logName(firstOffset: first)
            let bytes = try SegmentFiles.readAll(topicDirectory.appendingPathComponent(name).path)
            let scan = SegmentScan(bytes)
            var gaps: [UInt64] = []
            var expected = first
            for (record, _) in scan.records {
                if record.offset > expected { gaps += Array(expected..<record.offset) }
                expected = record.offset + 1
            }
            let tornBytes =
                scan.tornTail ? bytes.withUnsafeBytes { RecordFormat.endOfNonZero($0, from: scan.end) } - scan.end : 0
            reports.append(
                SegmentReport(
                    segment: name,
                    records: scan.records.count,
                    firstOffset: scan.records.first?.record.offset,
                    lastOffset: scan.records.last?.record.offset,
                    damagedPositions: scan.quarantined.map(\.position),
                    tornTailBytes: tornBytes,
                    gaps: gaps
                )
            )
        }
        return reports
    }
}
