import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a topic's records in order from any offset, only as far as the writer has made durable (`head`).
/// Any process may read any topic; readers take no lock.
public final class TopicReader {
    public let directory: URL
    private var segmentFirstOffset: UInt64 = 0
    private var descriptor: Int32 = -1
    private var position = 0
    /// Bytes of the current segment from `bufferStart` on, read ahead so a batch costs one `pread`, not one per
    /// record. May be stale past what was durable when it was read: see `parseAtPosition`.
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    static let readAhead = 256 * 1024
    /// The offset of the next record `next` returns.
    public private(set) var nextOffset: UInt64 = 0

    /// What one read produced.
    public struct Batch: Sendable {
        public var records: [RecordFormat.Record] = []
        /// Offsets of damaged records skipped (quarantined): reported, never silently dropped.
        public var quarantined: [UInt64] = []

        public init() {}
    }

    public init(directory: URL, from offset: UInt64 = 0) throws(QueueError) {
        self.directory = directory
        try seek(to: offset)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// The offset below which records are durable, as the writer last published it.
    public var durableEnd: UInt64 { SegmentFiles.readHead(in: directory) ?? 0 }

    /// Positions the reader at `offset` (or the first record after it, when retention removed it).
    public func seek(to offset: UInt64) throws(QueueError) {
        let segments = SegmentFiles.segments(in: directory)
        let first = segments.last(where: { $0 <= offset }) ?? segments.first ?? 0
        try open(segment: first)
        nextOffset = first
        position = 0
        // Jump with the sparse index, then walk the few records before the target.
        if let entry = indexEntries(first).last(where: { first + UInt64($0.relativeOffset) <= offset }) {
            position = Int(entry.position)
            // The index is only a hint: trust it when the record it points at is the one it names.
            if case .record(let record, _) = try parseAtPosition(),
                record.offset == first + UInt64(entry.relativeOffset)
            {
                nextOffset = record.offset
            } else {
                position = 0
            }
        }
        while nextOffset < offset {
            let batch = try next(limit: Int(min(offset - nextOffset, 1024)))
            if batch.records.isEmpty && batch.quarantined.isEmpty { break }
        }
    }

    /// Up to `limit` records from the current place, stopping at the durable end.
    public func next(limit: Int) throws(QueueError) -> Batch {
        var batch = Batch()
        let end = durableEnd
        while batch.records.count + batch.quarantined.count < limit, nextOffset < end {
            guard descriptor >= 0 else { break }
            switch try parseAtPosition() {
            case .record(let record, let next):
                guard record.offset == nextOffset else {
                    // A record out of place is damage too: skip to where the expected one is.
                    try skipDamaged(into: &batch)
                    continue
                }
                batch.records.append(record)
                position = bufferStart + next
                nextOffset += 1
            case .end:
                // The writer moved on to the next segment.
                let segments = SegmentFiles.segments(in: directory)
                guard let following = segments.first(where: { $0 > segmentFirstOffset }) else { return batch }
                if following > nextOffset {
                    for offset in nextOffset..<following { batch.quarantined.append(offset) }
                }
                try open(segment: following)
                position = 0
                nextOffset = following
            case .damaged:
                // Below the durable end nothing is in flight: this is damage, not a write in progress.
                try skipDamaged(into: &batch)
            }
        }
        return batch
    }

    /// Parses the record at `position` from the read-ahead buffer, reading from the file when the buffer does not
    /// hold it whole. Zeros or damage seen in the buffer are confirmed against the file before they count, since
    /// the buffer may predate records written since.
    private func parseAtPosition() throws(QueueError) -> RecordFormat.Parsed {
        func parseBuffered() -> RecordFormat.Parsed? {
            let at = position - bufferStart
            guard at >= 0, at + RecordFormat.headerSize <= buffer.count else { return nil }
            let length = buffer.withUnsafeBytes {
                Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
            }
            guard at + RecordFormat.headerSize + length <= buffer.count else { return nil }
            return buffer.withUnsafeBytes { RecordFormat.parse($0, at: at) }
        }
        if let parsed = parseBuffered(), case .record = parsed { return parsed }
        try refill()
        if let parsed = parseBuffered() { return parsed }
        // The record claims more bytes than the read-ahead: read exactly what it needs (or what the file has).
        let needed =
            buffer.count >= 8
            ? RecordFormat.headerSize
                + buffer.withUnsafeBytes {
                    Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
                }
            : RecordFormat.headerSize
        buffer = try pread(needed, at: position)
        bufferStart = position
        return buffer.withUnsafeBytes { RecordFormat.parse($0, at: 0) }
    }

    private func refill() throws(QueueError) {
        buffer = try pread(Self.readAhead, at: position)
        bufferStart = position
    }

    /// Quarantines the damaged stretch at the current position and moves to the next intact record.
    private func skipDamaged(into batch: inout Batch) throws(QueueError) {
        let rest = try restOfSegment(from: position)
        let resumed = rest.withUnsafeBytes { RecordFormat.resynchronize($0, after: 0) }
        guard let resumed,
            case .record(let record, _) = rest.withUnsafeBytes({ RecordFormat.parse($0, at: resumed) })
        else {
            // Nothing intact follows in this segment: everything up to the next segment is lost.
            let segments = SegmentFiles.segments(in: directory)
            let following = segments.first(where: { $0 > segmentFirstOffset }) ?? durableEnd
            for offset in nextOffset..<max(nextOffset + 1, following) { batch.quarantined.append(offset) }
            if following > segmentFirstOffset, segments.contains(following) {
                try open(segment: following)
                position = 0
            } else {
                descriptor = -1
            }
            nextOffset = following
            return
        }
        for offset in nextOffset..<max(record.offset, nextOffset + 1) { batch.quarantined.append(offset) }
        position += resumed
        nextOffset = record.offset
    }

    private func open(segment first: UInt64) throws(QueueError) {
        if descriptor >= 0 { close(descriptor) }
        buffer = []
        bufferStart = 0
        let path = directory.appendingPathComponent(SegmentFiles.logName(firstOffset: first)).path
        descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .fromErrno(errno, path: path, operation: "open") }
        segmentFirstOffset = first
    }

    /// The rest of the current segment from `start`, to look past a damaged record.
    private func restOfSegment(from start: Int) throws(QueueError) -> [UInt8] {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .fromErrno(errno, path: directory.path, operation: "stat") }
        return try pread(max(0, Int(info.st_size) - start), at: start)
    }

    private func pread(_ count: Int, at start: Int) throws(QueueError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let read = bytes.withUnsafeMutableBytes {
                Glibc.pread(descriptor, $0.baseAddress! + done, count - done, off_t(start + done))
            }
            if read < 0 && errno == EINTR { continue }
            if read < 0 { throw .fromErrno(errno, path: directory.path, operation: "read") }
            if read == 0 { break }
            done += read
        }
        bytes.removeLast(count - done)
        return bytes
    }

    private func indexEntries(_ first: UInt64) -> [(relativeOffset: UInt32, position: UInt32)] {
        let path = directory.appendingPathComponent(SegmentFiles.indexName(firstOffset: first)).path
        guard let bytes = try? SegmentFiles.readAll(path) else { return [] }
        return stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { at in
            bytes.withUnsafeBytes {
                (
                    UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)),
                    UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
                )
            }
        }
    }
}
