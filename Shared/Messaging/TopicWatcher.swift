import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Rings a `WakeSignal` whenever a topic's folder changes (the writer updates `head` after each durable group,
/// or starts a segment), through inotify on a thread of its own, so a consumer hears of a new event right after
/// its fsync instead of at its next poll. Where inotify is unavailable the consumer's poll interval applies.
final class TopicWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    init?(directory: URL, signal: WakeSignal) {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let descriptor = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        guard descriptor >= 0 else { return nil }
        let mask = UInt32(IN_MODIFY) | UInt32(IN_CREATE) | UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE)
        guard inotify_add_watch(descriptor, directory.path, mask) >= 0 else {
            close(descriptor)
            return nil
        }
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            // A bounded poll, so `stop` is noticed: closing a descriptor does not wake a thread blocked on it.
            while !lock.withLock({ stopped }) {
                guard poll(&waiting, 1, 250) > 0 else { continue }
                var changed = false
                while buffer.withUnsafeMutableBytes({ read(descriptor, $0.baseAddress, $0.count) }) > 0 {
                    changed = true
                }
                if changed { signal.ring() }
            }
            close(descriptor)
        }
        thread.name = "yunzhen-queue-watch"
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
    }
}
