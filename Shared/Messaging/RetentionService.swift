import Foundation
import Logging
import Metrics
import ServiceLifecycle
import YunzhenQueue

/// Applies a topic's retention policy every `interval` in the producing service. When the hard limit forces out
/// events a consumer has not read, it logs an error naming the consumers and raises
/// `yunzhen_queue_retention_cut_off_consumers` and an alarm, which stay up until retention runs clean again.
public struct RetentionService: Service {
    let topic: String
    let topicDirectory: URL
    let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger
    let onAlarm: @Sendable (String?) -> Void

    /// - Parameter onAlarm: called with a sentence for operators while consumers are cut off, with nil once clean
    ///   (the service shows it as a readiness warning).
    public init(
        topic: String,
        topicDirectory: URL,
        policy: RetentionPolicy,
        interval: Duration = .seconds(60),
        logger: Logger,
        onAlarm: @escaping @Sendable (String?) -> Void = { _ in }
    ) {
        self.topic = topic
        self.topicDirectory = topicDirectory
        self.policy = policy
        self.interval = interval
        self.logger = logger
        self.onAlarm = onAlarm
    }

    public func run() async throws {
        let removed = Counter(label: "yunzhen_queue_retention_removed_segments_total", dimensions: [("topic", topic)])
        let cutOff = Gauge(label: "yunzhen_queue_retention_cut_off_consumers", dimensions: [("topic", topic)])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let report = TopicRetention.enforce(policy, topicDirectory: topicDirectory)
            removed.increment(by: report.removedSegments.count)
            cutOff.record(report.consumersCutOff.count)
            onAlarm(
                report.consumersCutOff.isEmpty
                    ? nil
                    : "queue \(topic): retention hard limit removed events not yet read by \(report.consumersCutOff.keys.sorted().joined(separator: ", "))"
            )
            if !report.consumersCutOff.isEmpty {
                logger.error(
                    "retention hard limit removed events consumers had not read",
                    metadata: [
                        "topic": "\(topic)",
                        "consumers": "\(report.consumersCutOff.keys.sorted())",
                        "hard_limit_bytes": "\(policy.hardLimitBytes)",
                    ]
                )
            } else if report.heldForConsumers > 0 {
                logger.warning("retention kept segments a consumer has not read yet", metadata: ["topic": "\(topic)"])
            }
            // A stop must not wait out the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
