#if canImport(Glibc)
    import Glibc
#endif

/// The bytes of one record in a segment, little-endian:
///
///     magic  u32  "YZQ1", so a reader can find the next record after a damaged one
///     length u32  payload bytes
///     crc    u32  CRC-32C of length, offset, sequence and payload
///     offset u64  the record's place in the topic, from 0, without gaps
///     seq    u64  the producer's sequence (its outbox row id), so a relay restarting finds where it stopped
///     payload     a CloudEvents 1.0 JSON envelope
///
/// A segment is preallocated with zeros: a zero magic marks the end of the written part.
public enum RecordFormat {
    public static let magic: UInt32 = 0x3151_5A59  // "YZQ1" read as little-endian bytes
    public static let headerSize = 28

    /// A record as stored.
    public struct Record: Sendable, Equatable {
        public let offset: UInt64
        public let producerSequence: UInt64
        public let payload: [UInt8]

        public init(offset: UInt64, producerSequence: UInt64, payload: [UInt8]) {
            self.offset = offset
            self.producerSequence = producerSequence
            self.payload = payload
        }
    }

    /// Appends the encoded record to `buffer`.
    public static func encode(offset: UInt64, producerSequence: UInt64, payload: [UInt8], into buffer: inout [UInt8]) {
        let start = buffer.count
        append(magic, to: &buffer)
        append(UInt32(payload.count), to: &buffer)
        append(UInt32(0), to: &buffer)  // the checksum, filled in below
        append(offset, to: &buffer)
        append(producerSequence, to: &buffer)
        buffer.append(contentsOf: payload)
        let crc = buffer.withUnsafeBytes { bytes in
            let length = UnsafeRawBufferPointer(rebasing: bytes[(start + 4)..<(start + 8)])
            let rest = UnsafeRawBufferPointer(rebasing: bytes[(start + 12)...])
            return CRC32C.checksum(rest, continuing: CRC32C.checksum(length))
        }
        buffer.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: crc.littleEndian, toByteOffset: start + 8, as: UInt32.self)
        }
    }

    /// What stands at a position of a segment's bytes.
    public enum Parsed: Equatable {
        /// A whole, intact record, and where the next one starts.
        case record(Record, next: Int)
        /// Zeros: the end of what was written.
        case end
        /// Bytes that are not an intact record: torn (cut short by a crash) or damaged.
        case damaged
    }

    /// Parses the record starting at `position` of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, at position: Int) -> Parsed {
        guard position + headerSize <= bytes.count else {
            return bytes[position...].allSatisfy { $0 == 0 } ? .end : .damaged
        }
        let foundMagic = load(UInt32.self, bytes, position)
        let length = Int(load(UInt32.self, bytes, position + 4))
        if foundMagic == 0 && length == 0 && load(UInt32.self, bytes, position + 8) == 0 { return .end }
        guard foundMagic == magic, position + headerSize + length <= bytes.count else { return .damaged }
        let storedCRC = load(UInt32.self, bytes, position + 8)
        let crc = CRC32C.checksum(
            UnsafeRawBufferPointer(rebasing: bytes[(position + 12)..<(position + headerSize + length)]),
            continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(position + 4)..<(position + 8)]))
        )
        guard crc == storedCRC else { return .damaged }
        let record = Record(
            offset: load(UInt64.self, bytes, position + 12),
            producerSequence: load(UInt64.self, bytes, position + 20),
            payload: Array(bytes[(position + headerSize)..<(position + headerSize + length)])
        )
        return .record(record, next: position + headerSize + length)
    }

    /// The position of the next intact record after damage at `position`, found by its magic and checksum.
    public static func resynchronize(_ bytes: UnsafeRawBufferPointer, after position: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        var candidate = position + 1
        while candidate + headerSize <= bytes.count {
            // memchr for the magic's first byte: fast over the zeros of a preallocated segment.
            guard let found = memchr(base + candidate, 0x59, bytes.count - headerSize - candidate + 1) else {
                return nil
            }
            candidate = base.distance(to: UnsafeRawPointer(found))
            if load(UInt32.self, bytes, candidate) == magic, case .record = parse(bytes, at: candidate) {
                return candidate
            }
            candidate += 1
        }
        return nil
    }

    /// Where the bytes from `position` on become zeros for good (checked a page at a time): the end of what a
    /// torn write left behind.
    public static func endOfNonZero(_ bytes: UnsafeRawBufferPointer, from position: Int) -> Int {
        guard let base = bytes.baseAddress else { return position }
        let page = 4096
        var end = position
        var cursor = position
        while cursor < bytes.count {
            let length = min(page, bytes.count - cursor)
            if memcmp(base + cursor, zeroPage, length) != 0 { end = cursor + length }
            cursor += length
        }
        return end
    }

    // Written once here, only read afterwards.
    nonisolated(unsafe) private static let zeroPage = UnsafeRawPointer(
        UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8).initializeMemory(
            as: UInt8.self, repeating: 0, count: 4096))

    private static func append<Value: FixedWidthInteger>(_ value: Value, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    private static func load<Value: FixedWidthInteger>(_ type: Value.Type, _ bytes: UnsafeRawBufferPointer, _ at: Int)
        -> Value
    {
        Value(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Value.self))
    }
}
