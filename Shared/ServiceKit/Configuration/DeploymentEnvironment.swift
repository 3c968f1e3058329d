/// Where a process runs (`YUNZHEN_ENVIRONMENT`). Production is the default, so a deployment that forgets to say
/// gets the strict checks: sandbox adapters (SMS, payment) refuse to start there.
public enum DeploymentEnvironment: String, CaseIterable, Sendable {
    case production
    case development

    public static func read(from environment: EnvironmentReader) throws(ConfigurationError) -> DeploymentEnvironment {
        try environment.choice("YUNZHEN_ENVIRONMENT", default: .production)
    }
}
