import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Names and low-level file operations of a topic's folder:
///
///     <queue>/<topic>/00000000000000000000.log     segment, named by the offset of its first record
///     <queue>/<topic>/00000000000000000000.index   sparse index: (offset - first) u32, position u32, pairs
///     <queue>/<topic>/head                         u64: offsets below it are durable (written after each fsync)
///     <queue>/<topic>/writer.lock                  held (flock) by the topic's one writer
///     <queue>/<topic>/next-segment.spare           a zero-filled segment made ahead, renamed into place on a roll
enum SegmentFiles {
    static let spareName = "next-segment.spare"
    static func logName(firstOffset: UInt64) -> String { String(format: "%020llu.log", firstOffset) }
    static func indexName(firstOffset: UInt64) -> String { String(format: "%020llu.index", firstOffset) }

    /// The first offsets of the topic's segments, ascending.
    static func segments(in directory: URL) -> [UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name in
            guard name.hasSuffix(".log"), name.count == 24 else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
    }

    /// Reads the whole file at `path` (a segment is at most a few tens of MiB).
    static func readAll(_ path: String) throws(QueueError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .fromErrno(errno, path: path, operation: "open") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .fromErrno(errno, path: path, operation: "stat") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(done))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                if count == 0 { break }
                throw .fromErrno(errno, path: path, operation: "read")
            }
            done += count
        }
        return Array(bytes.prefix(done))
    }

    /// Writes all of `bytes` at `position`.
    static func write(_ descriptor: Int32, _ bytes: [UInt8], at position: Int, path: String) throws(QueueError) {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { bytes in
                pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position + done))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw .fromErrno(errno, path: path, operation: "write") }
            done += count
        }
    }

    /// Creates the file at `path` (replacing one there) with `bytes` allocated and zeros written through all of
    /// them, and syncs it.
    ///
    /// Written zeros, not only an allocation: ext4 and XFS mark the blocks of `fallocate` "unwritten", and the
    /// first write into each then changes the file's extent tree, so every group's `fdatasync` would also commit a
    /// journal transaction. Measured on the development machine's ext4, a 19 KB group (64 events) syncs in 151 µs
    /// into written zeros against 264 µs into fallocated blocks. PostgreSQL zero-fills its WAL segments for the
    /// same reason. The allocation comes first so a full disk fails at once, before any zeros are written.
    static func createZeroFilled(_ path: String, bytes: Int) throws(QueueError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw .fromErrno(errno, path: path, operation: "create") }
        defer { close(descriptor) }
        let allocated = posix_fallocate(descriptor, 0, off_t(bytes))
        guard allocated == 0 else { throw .fromErrno(allocated, path: path, operation: "preallocate") }
        // Synced a mebibyte at a time: one sync of the whole file would queue tens of megabytes at the disk in
        // front of every publisher's small sync for as long as it takes.
        let zeros = [UInt8](repeating: 0, count: min(bytes, 1 << 20))
        var position = 0
        while position < bytes {
            let count = min(zeros.count, bytes - position)
            try write(descriptor, Array(zeros[0..<count]), at: position, path: path)
            guard fdatasync(descriptor) == 0 else { throw .fromErrno(errno, path: path, operation: "fdatasync") }
            position += count
        }
        guard fsync(descriptor) == 0 else { throw .fromErrno(errno, path: path, operation: "fsync") }
    }

    /// Makes a new file's directory entry durable.
    static func syncDirectory(_ directory: URL) {
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    static func readHead(in directory: URL) -> UInt64? {
        guard let bytes = try? readAll(directory.appendingPathComponent("head").path), bytes.count == 8 else {
            return nil
        }
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
}
