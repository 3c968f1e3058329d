import Foundation
import Logging
import Metrics
import ServiceLifecycle
import YunzhenQueue

/// Applies a topic's retention policy every `interval` in the producing service. When the hard limit forces out
/// events a consumer has not read, it logs an error naming the consumers and raises
/// `yunzhen_queue_retention_cut_off_consumers`, which stays up until retention runs clean again.
public struct RetentionService: Service {
    let topic: String
    let topicDirectory: URL
    let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger

    public init(
        topic: String, topicDirectory: URL, policy: RetentionPolicy, interval: Duration = .seconds(60), logger: Logger
    ) {
        self.topic = topic
        self.topicDirectory = topicDirectory
        self.policy = policy
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let removed = Counter(label: "yunzhen_queue_retention_removed_segments_total", dimensions: [("topic", topic)])
        let cutOff = Gauge(label: "yunzhen_queue_retention_cut_off_consumers", dimensions: [("topic", topic)])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let report = TopicRetention.enforce(policy, topicDirectory: topicDirectory)
            removed.increment(by: report.removedSegments.count)
            cutOff.record(report.consumersCutOff.count)
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
