import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Lets a consumer's thread sleep until its topic has new durable events, a timeout passes, or it is interrupted.
///
/// It waits on inotify for changes to `head` (the writer rewrites it after each durable group) and for files
/// appearing (a new segment, a first `head`), not for the writer's segment and index writes, which come before the
/// sync and would only wake the consumer to find nothing durable yet. Where inotify is unavailable it sleeps out
/// the timeout (the consumer's poll interval). `stop` wakes it from any thread through a pipe, so a stop never
/// waits for a poll or a retry's backoff to run out.
final class TopicWaiter: @unchecked Sendable {
    private let inotify: Int32
    /// The read and write ends of the pipe `stop` writes to (never drained: a stop is for good).
    private let interruption: Int32
    private let interrupter: Int32
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private let lock = NSLock()
    private var stopRequested = false

    init(directory: URL) {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                _ = fcntl(end, F_SETFL, O_NONBLOCK)
            }
        }
        interruption = ends[0]
        interrupter = ends[1]
        var descriptor = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        let mask = UInt32(IN_MODIFY) | UInt32(IN_CREATE) | UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE)
        if descriptor >= 0 && inotify_add_watch(descriptor, directory.path, mask) < 0 {
            close(descriptor)
            descriptor = -1
        }
        inotify = descriptor
    }

    deinit {
        if inotify >= 0 { close(inotify) }
        if interruption >= 0 { close(interruption) }
        if interrupter >= 0 { close(interrupter) }
    }

    var isStopped: Bool { lock.withLock { stopRequested } }

    /// From now on every `wait` and `sleep` returns at once, including one in progress on another thread.
    func stop() {
        lock.withLock { stopRequested = true }
        var one: UInt8 = 1
        _ = write(interrupter, &one, 1)
    }

    /// Returns when the topic changed, `timeout` passed, or `stop` was called.
    func wait(timeout: Duration) {
        wait(timeout: timeout, watchingTopic: true)
    }

    /// Returns after `duration`, or at once when `stop` is called; true if it was stopped.
    func sleep(for duration: Duration) -> Bool {
        wait(timeout: duration, watchingTopic: false)
        return isStopped
    }

    private func wait(timeout: Duration, watchingTopic: Bool) {
        let deadline = ContinuousClock.now + timeout
        var descriptors = [
            pollfd(fd: interruption, events: Int16(POLLIN), revents: 0),
            pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
        ]
        let count: nfds_t = watchingTopic && inotify >= 0 ? 2 : 1
        while !isStopped {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return }
            let (seconds, attoseconds) = left.components
            // Rounded up, so a wait never ends a little early and spins.
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&descriptors, count, milliseconds)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0, count == 2, descriptors[1].revents != 0 else { continue }
            var changed = false
            while true {
                let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                changed = changed || buffer.withUnsafeBytes { Self.announcesDurableChange($0, count) }
            }
            if changed { return }
        }
    }

    /// Whether the inotify events in the first `count` bytes of `events` include a change to `head`, a new file,
    /// or an overflow (events were lost, so anything may have changed).
    private static func announcesDurableChange(_ events: UnsafeRawBufferPointer, _ count: Int) -> Bool {
        let headerSize = MemoryLayout<inotify_event>.size
        var position = 0
        while position + headerSize <= count {
            let mask = events.loadUnaligned(fromByteOffset: position + 4, as: UInt32.self)
            let nameLength = Int(events.loadUnaligned(fromByteOffset: position + 12, as: UInt32.self))
            if mask & (UInt32(IN_CREATE) | UInt32(IN_MOVED_TO) | UInt32(IN_Q_OVERFLOW)) != 0 { return true }
            let name = events[(position + headerSize)..<min(count, position + headerSize + nameLength)]
            if name.prefix(while: { $0 != 0 }).elementsEqual("head".utf8) { return true }
            position += headerSize + nameLength
        }
        return false
    }
}
