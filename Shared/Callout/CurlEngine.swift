import CCurl
import Foundation
import Logging

/// Owns a libcurl multi handle and the thread that drives it with libcurl's socket interface over epoll (the
/// "hiper" model): libcurl tells us which sockets to watch and when its next timeout is due, and the thread acts
/// only on the sockets that are ready. Polling every connection on every turn, as `curl_multi_poll` does, cost
/// several `poll` calls over all kept-alive connections per request in the edge's profile.
///
/// Callers hand transfers over under a lock and wake the thread through an eventfd, only when it is asleep;
/// adding handles, socket work and completions all happen on the engine's thread.
final class CurlEngine: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let epoll: Int32
    private let wakeup: Int32
    private let configuration: CalloutConfiguration
    private let logger: Logger
    private let lock = NSLock()
    // Guarded by `lock`.
    private var submitted: [Transfer] = []
    private var cancelled: [Transfer] = []
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private var stopping = false
    private var sleeping = false
    // Touched by the engine thread only (libcurl calls the socket and timer callbacks from inside its calls).
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    private var watched: Set<Int32> = []
    private var timerDeadline: ContinuousClock.Instant?

    init(configuration: CalloutConfiguration, logger: Logger) {
        guard let multi = curl_multi_init() else {
            // Only fails when libcurl cannot allocate its handle: the process cannot do anything useful.
            preconditionFailure("curl_multi_init failed: out of memory")
        }
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let wakeup = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(epoll >= 0 && wakeup >= 0, "cannot create the callout engine's epoll or eventfd: errno \(errno)")
        self.multi = multi
        self.epoll = epoll
        self.wakeup = wakeup
        self.configuration = configuration
        self.logger = logger
        _ = yz_epoll_watch(epoll, wakeup, 1, 0, 1)
        let me = Unmanaged.passUnretained(self).toOpaque()
        yz_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maximumCachedConnections)
        yz_multi_setopt_socket_callback(multi, socketCallback)
        yz_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        yz_multi_setopt_timer_callback(multi, timerCallback)
        yz_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
        // The thread holds the engine strongly until it exits after `shutdown()`.
        let thread = Thread { [self] in run() }
        thread.name = "yunzhen-callout"
        thread.start()
    }

    func submit(_ transfer: Transfer) {
        var rejection: CalloutError?
        var wake = false
        lock.withLock {
            if stopping {
                rejection = .shutDown
            } else if transfer.cancelled {
                rejection = .cancelled
            } else if let easy = idleHandles.popLast() ?? curl_easy_init() {
                transfer.configure(easy, usesEnvironmentProxy: configuration.usesEnvironmentProxy)
                submitted.append(transfer)
                wake = takeSleeper()
            } else {
                rejection = .transport(url: transfer.request.url, reason: "curl_easy_init failed")
            }
        }
        if let rejection {
            resume(transfer, with: .failure(rejection))
        } else if wake {
            signalWakeup()
        }
    }

    func cancel(_ transfer: Transfer) {
        let wake = lock.withLock {
            transfer.cancelled = true
            cancelled.append(transfer)
            return takeSleeper()
        }
        if wake { signalWakeup() }
    }

    func shutdown() {
        lock.withLock {
            stopping = true
            sleeping = false
        }
        signalWakeup()
    }

    /// Under `lock`: whether the engine thread is (about to be) asleep and needs a wakeup; claims that wakeup.
    private func takeSleeper() -> Bool {
        guard sleeping else { return false }
        sleeping = false
        return true
    }

    private func signalWakeup() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    private func run() {
        var readyDescriptors = [Int32](repeating: 0, count: 64)
        var readyMasks = [Int32](repeating: 0, count: 64)
        var stillRunning: Int32 = 0
        while true {
            let (newTransfers, cancellations, stop) = lock.withLock {
                defer {
                    submitted.removeAll(keepingCapacity: true)
                    cancelled.removeAll(keepingCapacity: true)
                }
                return (submitted, cancelled, stopping)
            }
            for transfer in newTransfers {
                guard let easy = transfer.easy else { continue }
                active[easy] = transfer
                // libcurl answers through the timer callback (timeout 0), which starts the transfer below.
                curl_multi_add_handle(multi, easy)
            }
            for transfer in cancellations {
                guard let easy = transfer.easy, active[easy] === transfer else { continue }
                finish(easy, with: .failure(.cancelled))
            }
            if stop {
                for easy in Array(active.keys) { finish(easy, with: .failure(.shutDown)) }
                break
            }

            let timeout = millisecondsUntilTimer()
            let mayWait =
                timeout != 0
                && lock.withLock {
                    sleeping = submitted.isEmpty && cancelled.isEmpty && !stopping
                    return sleeping
                }
            let ready = yz_epoll_wait(epoll, &readyDescriptors, &readyMasks, 64, mayWait ? timeout : 0)
            lock.withLock { sleeping = false }
            if ready > 0 {
                for index in 0..<Int(ready) {
                    let descriptor = readyDescriptors[index]
                    if descriptor == wakeup {
                        var count: UInt64 = 0
                        _ = read(wakeup, &count, 8)
                    } else {
                        curl_multi_socket_action(multi, descriptor, readyMasks[index], &stillRunning)
                    }
                }
            }
            if let deadline = timerDeadline, deadline <= .now {
                timerDeadline = nil
                curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &stillRunning)
            }
            completeFinishedTransfers()
        }
        lock.withLock {
            for easy in idleHandles { curl_easy_cleanup(easy) }
            idleHandles.removeAll()
        }
        curl_multi_cleanup(multi)
        close(epoll)
        close(wakeup)
        logger.debug("callout engine stopped")
    }

    /// -1 to wait for sockets only, 0 when libcurl's timer is already due, else milliseconds until it is.
    private func millisecondsUntilTimer() -> Int32 {
        guard let deadline = timerDeadline else { return -1 }
        let remaining = deadline - .now
        guard remaining > .zero else { return 0 }
        return Int32(min(Double(Int32.max), max(1, (remaining / .milliseconds(1)).rounded(.up))))
    }

    private func completeFinishedTransfers() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                let transfer = active[easy]
            else { continue }
            finish(easy, with: transfer.outcome(code: yz_message_result(message)))
        }
    }

    private func finish(_ easy: UnsafeMutableRawPointer, with outcome: Result<CalloutResponse, CalloutError>) {
        guard let transfer = active.removeValue(forKey: easy) else { return }
        curl_multi_remove_handle(multi, easy)
        // Reset drops the options (and our pointers into `transfer`) but keeps the handle's caches.
        curl_easy_reset(easy)
        transfer.easy = nil
        lock.withLock { idleHandles.append(easy) }
        resume(transfer, with: outcome)
    }

    private func resume(_ transfer: Transfer, with outcome: Result<CalloutResponse, CalloutError>) {
        let continuation = lock.withLock {
            defer { transfer.continuation = nil }
            return transfer.continuation
        }
        continuation?.resume(with: outcome.mapError { $0 as any Error })
    }

    /// libcurl's socket callback: watch `socket` as asked, or stop watching it.
    fileprivate func watch(_ socket: Int32, what: Int32) {
        if what == Int32(CURL_POLL_REMOVE) {
            if watched.remove(socket) != nil { _ = yz_epoll_unwatch(epoll, socket) }
            return
        }
        let readable: Int32 = what & Int32(CURL_POLL_IN) != 0 ? 1 : 0
        let writable: Int32 = what & Int32(CURL_POLL_OUT) != 0 ? 1 : 0
        let isNew = watched.insert(socket).inserted
        if yz_epoll_watch(epoll, socket, readable, writable, isNew ? 1 : 0) != 0 && !isNew && errno == ENOENT {
            // The descriptor was closed and reused behind libcurl's back; register it afresh.
            _ = yz_epoll_watch(epoll, socket, readable, writable, 1)
        }
    }

    /// libcurl's timer callback: -1 cancels the timer, otherwise act on `CURL_SOCKET_TIMEOUT` after that long.
    fileprivate func setTimer(milliseconds: Int) {
        timerDeadline = milliseconds < 0 ? nil : ContinuousClock.now + .milliseconds(milliseconds)
    }
}

private let socketCallback: yz_curl_socket_callback = { _, socket, what, userdata, _ in
    guard let userdata else { return 0 }
    Unmanaged<CurlEngine>.fromOpaque(userdata).takeUnretainedValue().watch(socket, what: what)
    return 0
}

private let timerCallback: yz_curl_timer_callback = { _, milliseconds, userdata in
    guard let userdata else { return 0 }
    Unmanaged<CurlEngine>.fromOpaque(userdata).takeUnretainedValue().setTimer(milliseconds: milliseconds)
    return 0
}
