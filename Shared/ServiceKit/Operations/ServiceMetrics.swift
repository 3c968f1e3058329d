import Foundation
import Metrics
import Prometheus

/// The process's Prometheus registry. swift-metrics can be bootstrapped once per process, so every app built in
/// this process (one in production, many in a test run) shares it.
public enum ServiceMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies of our JSON APIs sit between a tenth of a millisecond and a few seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    private static let process = ProcessMetrics(registry: registry)

    /// The Prometheus text exposition of every metric, with process metrics read fresh.
    public static func exposition() -> [UInt8] {
        process.update()
        return registry.emitToBuffer()
    }
}

/// The standard `process_*` metrics (as the Prometheus client libraries export them), read from `/proc/self`.
final class ProcessMetrics: Sendable {
    private let cpuSeconds: Prometheus.Gauge
    private let residentBytes: Prometheus.Gauge
    private let virtualBytes: Prometheus.Gauge
    private let openFileDescriptors: Prometheus.Gauge
    private let maximumFileDescriptors: Prometheus.Gauge
    private let startTimeSeconds: Prometheus.Gauge

    init(registry: PrometheusCollectorRegistry) {
        cpuSeconds = registry.makeGauge(
            name: "process_cpu_seconds_total", help: "User and system CPU time spent in seconds.")
        residentBytes = registry.makeGauge(
            name: "process_resident_memory_bytes", help: "Resident memory size in bytes.")
        virtualBytes = registry.makeGauge(name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.")
        openFileDescriptors = registry.makeGauge(name: "process_open_fds", help: "Number of open file descriptors.")
        maximumFileDescriptors = registry.makeGauge(
            name: "process_max_fds", help: "Maximum number of open file descriptors.")
        startTimeSeconds = registry.makeGauge(
            name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch in seconds.")
        startTimeSeconds.set(
            Date.now.timeIntervalSince1970 - ProcessInfo.processInfo.systemUptime + Self.uptimeAtStart())
    }

    func update() {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        {
            // Fields after the command name; utime and stime are fields 14 and 15, vsize 23, rss 24 (man 5 proc).
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            if fields.count > 22, let user = Double(fields[11]), let system = Double(fields[12]),
                let virtual = Double(fields[20]), let residentPages = Double(fields[21])
            {
                cpuSeconds.set((user + system) / ticks)
                virtualBytes.set(virtual)
                residentBytes.set(residentPages * Double(sysconf(Int32(_SC_PAGESIZE))))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFileDescriptors.set(Double(descriptors.count))
        }
        var limit = rlimit()
        if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
            maximumFileDescriptors.set(Double(limit.rlim_cur))
        }
    }

    /// Seconds between boot and this process's start (field 22 of /proc/self/stat), for the start time.
    private static func uptimeAtStart() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return ProcessInfo.processInfo.systemUptime }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 19, let startTicks = Double(fields[19]) else {
            return ProcessInfo.processInfo.systemUptime
        }
        return startTicks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

#if canImport(Glibc)
    import Glibc
    private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
    import Darwin
    private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif
