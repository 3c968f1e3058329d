import Foundation

/// A doorbell between threads and one waiting task: `ring` from anywhere, `wait` until it rang or a timeout
/// passed. Rings while nobody waits are kept (one), so none is lost between two waits.
public final class WakeSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var rung = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public func ring() {
        let continuation: CheckedContinuation<Void, Never>? = lock.withLock {
            if let waiter {
                self.waiter = nil
                return waiter
            }
            rung = true
            return nil
        }
        continuation?.resume()
    }

    /// Returns when rung (now or during the wait), when `timeout` passed, or when the task is cancelled.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = lock.withLock {
                    if rung || Task.isCancelled {
                        rung = false
                        return true
                    }
                    waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = lock.withLock {
                defer { waiter = nil }
                return waiter
            }
            continuation?.resume()
        }
    }
}
