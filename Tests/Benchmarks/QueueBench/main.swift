// queue-bench: the queue's throughput and latency on this machine's disk, printed as JSON lines, one per
// measurement. Run through Tests/Benchmarks/queue.sh, which puts NATS JetStream beside it and prints the table.
// Not a product executable.
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization
import YunzhenContracts
import YunzhenMessaging
import YunzhenQueue
import YunzhenStorage

#if canImport(Glibc)
    import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: queue-bench DIR [SECONDS]\n".utf8))
    exit(64)
}
var logger = Logger(label: "queue-bench")
logger.logLevel = ProcessInfo.processInfo.environment["BENCH_LOG"] == nil ? .error : .debug
// The consumer half of the outbox measurement, started by this same program as a child process.
if arguments[1] == "outbox-consumer", arguments.count == 3 {
    try await OutboxPath.consume(directory: URL(fileURLWithPath: arguments[2]), logger: logger)
    exit(0)
}
let root = URL(fileURLWithPath: arguments[1])
let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 5 : 5
let payloadSize = 256

enum Bench {
    static func emit(_ fields: [String: any Sendable]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.down)))]
    }

    /// A 256-byte CloudEvent whose data carries the monotonic time it was published at (see `stamped`).
    static func event(_ index: Int, publishedAt: UInt64 = 0) -> [UInt8] {
        var text =
            #"{"specversion":"1.0","id":"\#(index)","source":"/bench","type":"bench.measured.v1","time":"2026-01-01T00:00:00Z","data":{"t":"\#(String(format: "%020llu", publishedAt))","pad":""}}"#
        let padding = max(0, 256 - text.utf8.count)
        text = text.replacingOccurrences(
            of: #""pad":"""#, with: #""pad":""# + String(repeating: "x", count: padding) + "\"")
        return Array(text.utf8)
    }

    /// `event` with its time replaced by now, written into the bytes so the clock is read last.
    static func stamped(_ event: [UInt8]) -> [UInt8] {
        var event = event
        let marker = Array(#""t":""#.utf8)
        let start = (0...(event.count - marker.count)).first { event[$0..<($0 + marker.count)].elementsEqual(marker) }!
        let digits = Array(String(format: "%020llu", monotonicNanoseconds()).utf8)
        event.replaceSubrange((start + marker.count)..<(start + marker.count + 20), with: digits)
        return event
    }
}

// 1. The disk's own rate: one write and one fdatasync at a time. First 256 bytes appended to a growing file (the
//    plain figure); then a 64-event group (64 records of 256 bytes plus headers) into zero-filled space, as the
//    topic writer does it: 64 one-at-a-time publishers can never go faster than 64 events per such sync.
for (measure, size, zeroFilled) in [
    ("disk append+fdatasync", payloadSize, false),
    ("disk 64-event group+fdatasync, zero-filled file", 64 * (payloadSize + 28), true),
] {
    let path = root.appendingPathComponent("fsync-probe").path
    let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    if zeroFilled {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<64 { _ = zeros.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } }
        _ = fsync(descriptor)
    }
    let record = [UInt8](repeating: 0x61, count: size)
    var count = 0
    var position = 0
    var latencies: [Double] = []
    let deadline = Bench.monotonicNanoseconds() + UInt64(seconds * 1e9 / 2)
    while Bench.monotonicNanoseconds() < deadline && position + size <= 64 << 20 {
        let started = Bench.monotonicNanoseconds()
        _ = record.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(position)) }
        _ = fdatasync(descriptor)
        latencies.append(Double(Bench.monotonicNanoseconds() - started) / 1000)
        position += size
        count += 1
    }
    close(descriptor)
    unlink(path)
    latencies.sort()
    let elapsed = latencies.reduce(0, +) / 1e6
    Bench.emit([
        "measure": measure, "ops_per_s": Double(count) / elapsed, "bytes": size,
        "p50_us": Bench.percentile(latencies, 0.5), "p99_us": Bench.percentile(latencies, 0.99),
    ])
}

// 2. Durable publish: acknowledged only after the group's fdatasync, with 1, 8 and 64 publishers.
for publishers in [1, 8, 64] {
    let directory = root.appendingPathComponent("publish-\(publishers)")
    let writer = try TopicWriter.open(directory: directory, topic: "bench", logger: logger)
    let payload = Bench.event(0)
    let deadline = Bench.monotonicNanoseconds() + UInt64(seconds * 1e9)
    let started = Bench.monotonicNanoseconds()
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for publisher in 0..<publishers {
            group.addTask {
                var sent = 0
                while Bench.monotonicNanoseconds() < deadline {
                    _ = try await writer.append([
                        .init(producerSequence: UInt64(publisher << 40 | sent), payload: payload)
                    ])
                    sent += 1
                }
                return sent
            }
        }
        var total = 0
        for try await sent in group { total += sent }
        return total
    }
    let elapsed = Double(Bench.monotonicNanoseconds() - started) / 1e9
    writer.close()
    Bench.emit([
        "measure": "durable publish", "publishers": publishers, "events_per_s": Double(total) / elapsed,
        "events": total,
    ])

    // 3. Consume: read back everything the 64-publisher run wrote.
    if publishers == 64 {
        let reader = try TopicReader(directory: directory)
        let readStarted = Bench.monotonicNanoseconds()
        var read = 0
        while true {
            let batch = try reader.next(limit: 4096)
            if batch.records.isEmpty { break }
            read += batch.records.count
        }
        let readElapsed = Double(Bench.monotonicNanoseconds() - readStarted) / 1e9
        Bench.emit(["measure": "consume (read)", "events_per_s": Double(read) / readElapsed, "events": read])
    }
}

// 3b. Asynchronous publish, as JetStream's async publish is measured: one publisher keeps up to 4,000 appends in
//     flight; each is still acknowledged only after its group's fdatasync.
do {
    let directory = root.appendingPathComponent("publish-async")
    let writer = try TopicWriter.open(directory: directory, topic: "bench", logger: logger)
    let payload = Bench.event(0)
    let deadline = Bench.monotonicNanoseconds() + UInt64(seconds * 1e9)
    let started = Bench.monotonicNanoseconds()
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        var inFlight = 0
        var acknowledged = 0
        var sequence: UInt64 = 0
        while Bench.monotonicNanoseconds() < deadline {
            if inFlight == 4000, let done = try await group.next() {
                acknowledged += done
                inFlight -= 1
            }
            sequence += 1
            let next = sequence
            group.addTask {
                _ = try await writer.append([.init(producerSequence: next, payload: payload)])
                return 1
            }
            inFlight += 1
        }
        for try await done in group { acknowledged += done }
        return acknowledged
    }
    let elapsed = Double(Bench.monotonicNanoseconds() - started) / 1e9
    writer.close()
    Bench.emit([
        "measure": "durable publish, async (4,000 in flight)", "events_per_s": Double(total) / elapsed, "events": total,
    ])
}

// 4. Publish → handler latency through a real consumer (its own SQLite database, offsets in its transaction),
//    at 1,000 events/s and at full load.
for rate in [1000, 0] {
    let directory = root.appendingPathComponent("latency-\(rate)")
    let topic = directory.appendingPathComponent("queue/bench")
    let writer = try TopicWriter.open(directory: topic, topic: "bench", logger: logger)
    var migrator = DatabaseMigrator()
    ConsumerSchema.registerMigration(in: &migrator)
    let database = try ServiceDatabase.open(directory: directory, name: "consumer", migrator: migrator, logger: logger)
    let latencies = Mutex<[Double]>([])
    var acknowledgements: [Double] = []
    struct Measured: Codable, Sendable { var t: String }  // zero-padded, so `stamped` can rewrite it in place
    let consumer = QueueConsumer(
        name: "bench", topic: "bench", topicDirectory: topic, eventTypes: ["bench.measured.v1"],
        database: database.writer, logger: logger, pollInterval: .milliseconds(50)
    ) { event, _ in
        let now = Bench.monotonicNanoseconds()
        let sent = UInt64(try event.decode(Measured.self).data.t) ?? now
        latencies.withLock { $0.append(Double(now - sent) / 1000) }
    }
    let group = ServiceGroup(services: [consumer], logger: logger)
    let running = Task { try await group.run() }
    try await Task.sleep(for: .milliseconds(300))
    let duration = seconds
    let started = Bench.monotonicNanoseconds()
    var published = 0
    if rate > 0 {
        let interval = 1e9 / Double(rate)
        while Double(Bench.monotonicNanoseconds() - started) < duration * 1e9 {
            let due = started + UInt64(Double(published) * interval)
            var wake = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nil) == EINTR {}
            let payload = Bench.stamped(Bench.event(published))
            let sent = Bench.monotonicNanoseconds()
            _ = try await writer.append([.init(producerSequence: UInt64(published + 1), payload: payload)])
            acknowledgements.append(Double(Bench.monotonicNanoseconds() - sent) / 1000)
            published += 1
        }
    } else {
        let deadline = started + UInt64(duration * 1e9)
        published = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for publisher in 0..<64 {
                tasks.addTask {
                    var sent = 0
                    while Bench.monotonicNanoseconds() < deadline {
                        _ = try await writer.append([
                            .init(
                                producerSequence: UInt64(publisher << 40 | sent),
                                payload: Bench.stamped(Bench.event(sent)))
                        ])
                        sent += 1
                    }
                    return sent
                }
            }
            var total = 0
            for try await sent in tasks { total += sent }
            return total
        }
    }
    let wait = Bench.monotonicNanoseconds() + 10_000_000_000
    while latencies.withLock({ $0.count }) < published && Bench.monotonicNanoseconds() < wait {
        try await Task.sleep(for: .milliseconds(20))
    }
    await group.triggerGracefulShutdown()
    _ = try? await running.value
    writer.close()
    let sorted = latencies.withLock { $0 }.sorted()
    acknowledgements.sort()
    var fields: [String: any Sendable] = [
        "measure": "publish→handler latency", "rate": rate == 0 ? "full load (64 publishers)" : "\(rate)/s",
        "handled": sorted.count, "published": published,
        "p50_us": Bench.percentile(sorted, 0.5), "p99_us": Bench.percentile(sorted, 0.99),
        "max_us": sorted.last ?? -1,
    ]
    if !acknowledgements.isEmpty {
        // The publisher's own wait for durability, measured at 1,000/s only.
        fields["ack_p50_us"] = Bench.percentile(acknowledgements, 0.5)
        fields["ack_p99_us"] = Bench.percentile(acknowledgements, 0.99)
    }
    Bench.emit(fields)
}

// 5. The outbox path end to end: a service transaction, the relay, a consumer in another process.
for rate in [1000, 0] {
    try await OutboxPath.measure(root: root, rate: rate, seconds: seconds, logger: logger)
}
