import YunzhenQueue

extension EnvironmentReader {
    /// How long and how large a producer lets its topic grow: `YUNZHEN_QUEUE_RETENTION_DAYS` (default 7),
    /// `YUNZHEN_QUEUE_MAX_MB` (default 10240) and `YUNZHEN_QUEUE_HARD_LIMIT_MB` (default 20480, at least the
    /// maximum). Every service that publishes a topic reads the same three.
    public func retentionPolicy() throws(ConfigurationError) -> RetentionPolicy {
        let days = try integer("YUNZHEN_QUEUE_RETENTION_DAYS", default: 7, in: 1...3650)
        let maximumMB = try integer("YUNZHEN_QUEUE_MAX_MB", default: 10 * 1024, in: 64...(1 << 24))
        let hardLimitMB = try integer("YUNZHEN_QUEUE_HARD_LIMIT_MB", default: 20 * 1024, in: 64...(1 << 24))
        guard hardLimitMB >= maximumMB else {
            throw ConfigurationError(
                variable: "YUNZHEN_QUEUE_HARD_LIMIT_MB", problem: "must be at least YUNZHEN_QUEUE_MAX_MB (\(maximumMB))"
            )
        }
        return RetentionPolicy(
            maximumAge: .seconds(days * 24 * 3600), maximumBytes: Int64(maximumMB) << 20,
            hardLimitBytes: Int64(hardLimitMB) << 20)
    }
}
