import Foundation

/// One process `yunzhen dev` keeps running.
struct ChildSpec: Sendable {
    let name: String
    let executable: URL
    let environment: [String: String]
}

/// Starts the children, prefixes their output with their name, restarts one that exits with a growing delay,
/// and on SIGINT or SIGTERM stops them all gracefully (SIGTERM, then SIGKILL after a grace period).
final class Supervisor: @unchecked Sendable {
    private let children: [ChildSpec]
    private let lock = NSLock()
    // Guarded by `lock`.
    private var running: [String: Process] = [:]
    private var startedAt: [String: ContinuousClock.Instant] = [:]
    private var backoff: [String: Duration] = [:]
    private var stopping = false
    private var stopped: CheckedContinuation<Void, Never>?
    private var signalSources: [any DispatchSourceSignal] = []
    private let output = PrefixedOutput()

    /// Restarts wait this long at first, doubling up to `maximumBackoff`; a child that ran longer than
    /// `stableAfter` starts again from the first delay.
    static let initialBackoff: Duration = .milliseconds(500)
    static let maximumBackoff: Duration = .seconds(30)
    static let stableAfter: Duration = .seconds(30)
    static let gracePeriod: Duration = .seconds(10)

    init(children: [ChildSpec]) {
        self.children = children
    }

    func start() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in self?.stopAll() }
            source.resume()
            signalSources.append(source)
        }
        for child in children { launch(child) }
    }

    /// True once a stop was asked for (Ctrl-C or SIGTERM).
    var isStopping: Bool { lock.withLock { stopping } }

    func say(_ message: String) {
        output.write(name: "yunzhen", text: message + "\n")
    }

    /// Returns once every child has exited after a stop.
    func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let done = lock.withLock {
                if stopping && running.isEmpty { return true }
                stopped = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func launch(_ child: ChildSpec) {
        let process = Process()
        process.executableURL = child.executable
        process.environment = child.environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        output.attach(stdout.fileHandleForReading, name: child.name)
        output.attach(stderr.fileHandleForReading, name: child.name)
        process.terminationHandler = { [weak self] process in
            self?.exited(child, status: process.terminationStatus, reason: process.terminationReason)
        }
        do {
            try lock.withLock {
                guard !stopping else { return }
                try process.run()
                running[child.name] = process
                startedAt[child.name] = .now
            }
        } catch {
            say("cannot start \(child.name): \(error)")
            // A failed launch counts as a run that ended at once, so retries back off.
            lock.withLock { startedAt[child.name] = .now }
            scheduleRestart(child)
        }
    }

    private func exited(_ child: ChildSpec, status: Int32, reason: Process.TerminationReason) {
        let (isStopping, continuation) = lock.withLock {
            running[child.name] = nil
            let continuation = stopping && running.isEmpty ? stopped : nil
            if continuation != nil { stopped = nil }
            return (stopping, continuation)
        }
        if isStopping {
            say("\(child.name) stopped (\(reason == .exit ? "exit \(status)" : "signal \(status)"))")
            continuation?.resume()
            return
        }
        say("\(child.name) exited (\(reason == .exit ? "exit \(status)" : "signal \(status)")); restarting")
        scheduleRestart(child)
    }

    private func scheduleRestart(_ child: ChildSpec) {
        let delay: Duration = lock.withLock {
            let ranFor = startedAt[child.name].map { ContinuousClock.now - $0 } ?? .zero
            let previous = ranFor > Self.stableAfter ? nil : backoff[child.name]
            let next = previous.map { min($0 * 2, Self.maximumBackoff) } ?? Self.initialBackoff
            backoff[child.name] = next
            return next
        }
        let nanoseconds = UInt64(delay / .nanoseconds(1))
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [weak self] in
            guard let self, !self.lock.withLock({ self.stopping }) else { return }
            self.launch(child)
        }
    }

    private func stopAll() {
        let (processes, continuation) = lock.withLock {
            let first = !stopping
            stopping = true
            let continuation = running.isEmpty ? stopped : nil
            if continuation != nil { stopped = nil }
            return (first ? Array(running.values) : [], continuation)
        }
        continuation?.resume()
        guard !processes.isEmpty else { return }
        say("stopping all processes")
        // The edge first would be kinder to clients, but every process drains its own requests anyway.
        for process in processes where process.isRunning { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(Self.gracePeriod.components.seconds))) {
            for process in processes where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
    }
}

/// Copies children's output to ours a whole line at a time, each line prefixed `[name] `.
final class PrefixedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var partial: [ObjectIdentifier: Data] = [:]

    func attach(_ handle: FileHandle, name: String) {
        handle.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self else { return }
            if chunk.isEmpty {
                handle.readabilityHandler = nil
                self.flush(handle, name: name)
                return
            }
            self.append(chunk, from: handle, name: name)
        }
    }

    func write(name: String, text: String) {
        lock.withLock { emit(name: name, text: text) }
    }

    private func append(_ chunk: Data, from handle: FileHandle, name: String) {
        lock.withLock {
            var buffer = partial[ObjectIdentifier(handle), default: Data()]
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex...newline]
                emit(name: name, text: String(decoding: line, as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...newline)
            }
            partial[ObjectIdentifier(handle)] = buffer
        }
    }

    private func flush(_ handle: FileHandle, name: String) {
        lock.withLock {
            if let rest = partial.removeValue(forKey: ObjectIdentifier(handle)), !rest.isEmpty {
                emit(name: name, text: String(decoding: rest, as: UTF8.self) + "\n")
            }
        }
    }

    private func emit(name: String, text: String) {
        var lines = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            lines += "[\(name)] \(line)\n"
        }
        FileHandle.standardOutput.write(Data(lines.utf8))
    }
}
