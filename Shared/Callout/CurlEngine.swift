import CCurl
import Foundation
import Logging

/// Owns a libcurl multi handle and the thread that drives it. Callers hand it transfers under a lock and wake
/// it with `curl_multi_wakeup`; everything else (adding handles, performing, completing) happens on its thread.
final class CurlEngine: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let configuration: CalloutConfiguration
    private let logger: Logger
    private let lock = NSLock()
    // Guarded by `lock`.
    private var submitted: [Transfer] = []
    private var cancelled: [Transfer] = []
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private var stopping = false
    // Touched by the engine thread only.
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]

    init(configuration: CalloutConfiguration, logger: Logger) {
        guard let multi = curl_multi_init() else {
            // Only fails when libcurl cannot allocate its handle: the process cannot do anything useful.
            preconditionFailure("curl_multi_init failed: out of memory")
        }
        self.multi = multi
        self.configuration = configuration
        self.logger = logger
        yz_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maximumCachedConnections)
        let thread = Thread { [self] in run() }
        thread.name = "yunzhen-callout"
        thread.start()
    }

    func submit(_ transfer: Transfer) {
        let rejection: CalloutError? = lock.withLock {
            if stopping { return .shutDown }
            if transfer.cancelled { return .cancelled }
            let easy = idleHandles.popLast() ?? curl_easy_init()
            guard let easy else { return .transport(url: transfer.request.url, reason: "curl_easy_init failed") }
            transfer.configure(easy, usesEnvironmentProxy: configuration.usesEnvironmentProxy)
            submitted.append(transfer)
            return nil
        }
        if let rejection {
            resume(transfer, with: .failure(rejection))
        } else {
            curl_multi_wakeup(multi)
        }
    }

    func cancel(_ transfer: Transfer) {
        lock.withLock {
            transfer.cancelled = true
            cancelled.append(transfer)
        }
        curl_multi_wakeup(multi)
    }

    func shutdown() {
        lock.withLock { stopping = true }
        curl_multi_wakeup(multi)
    }

    private func run() {
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
            curl_multi_perform(multi, &stillRunning)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi, &remaining) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = active[easy]
                else { continue }
                finish(easy, with: transfer.outcome(code: yz_message_result(message)))
            }
            // Sleeps until a socket is ready, a libcurl timer is due, or `curl_multi_wakeup` is called.
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        lock.withLock {
            for easy in idleHandles { curl_easy_cleanup(easy) }
            idleHandles.removeAll()
        }
        curl_multi_cleanup(multi)
        logger.debug("callout engine stopped")
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
}
