import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenQueue
import YunzhenServiceKit

/// Everything registration reads from the environment at start-up.
public struct RegistrationConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// `<YUNZHEN_DATA>/registration/`
    public var dataDirectory: URL
    /// `<YUNZHEN_DATA>/queue/registration/`: the topic registration publishes its events to.
    public var topicDirectory: URL
    /// How long and how much of the topic to keep (`YUNZHEN_QUEUE_RETENTION_DAYS`, `YUNZHEN_QUEUE_MAX_MB`,
    /// `YUNZHEN_QUEUE_HARD_LIMIT_MB`).
    public var retention = RetentionPolicy()
    public var deployment: DeploymentEnvironment = .production
    /// Signs patients' access tokens (`YUNZHEN_AUTH_SIGNING_KEY`, required).
    public var signingKey: SigningKey
    /// Keys whose tokens registration accepts besides its own (`YUNZHEN_AUTH_VERIFY_KEYS`: the old key during a
    /// rotation).
    public var otherVerificationKeys: [VerificationKey] = []
    public var sms: SMSSettings
    public var payment: PaymentSettings
    public var booking: BookingPolicy
    /// The hospital's province (`YUNZHEN_HOSPITAL_PROVINCE`, default 北京): patients from elsewhere count as out of
    /// province in the statistics.
    public var hospitalProvince = "北京"
    /// The first admin's password, used only while no admin exists (`YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD`).
    public var bootstrapAdminPassword: String?

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultPort: ServiceName.registration.defaultPort)
        dataDirectory = try DataRoot.directory(for: .registration, environment: environment)
        topicDirectory = try DataRoot.topicDirectory(for: .registration, environment: environment)
        retention = try environment.retentionPolicy()
        deployment = try DeploymentEnvironment.read(from: environment)
        let signing = try environment.requiredString(
            "YUNZHEN_AUTH_SIGNING_KEY", "the key that signs access tokens, as <kid>:<base64> (`yunzhen keys generate`)")
        let key: SigningKey
        do {
            key = try SigningKey(configuration: signing)
        } catch {
            throw ConfigurationError(variable: "YUNZHEN_AUTH_SIGNING_KEY", problem: "\(error)")
        }
        signingKey = key
        if let text = environment.optionalString("YUNZHEN_AUTH_VERIFY_KEYS") {
            do {
                otherVerificationKeys = try VerificationKey.list(configuration: text).filter { $0.keyID != key.keyID }
            } catch {
                throw ConfigurationError(variable: "YUNZHEN_AUTH_VERIFY_KEYS", problem: "\(error)")
            }
        }
        sms = try SMSSettings.read(from: environment, deployment: deployment)
        payment = try PaymentSettings.read(from: environment, deployment: deployment, port: server.port)
        booking = try BookingPolicy.read(from: environment)
        if let province = environment.optionalString("YUNZHEN_HOSPITAL_PROVINCE") {
            guard ResidentID.provinces.values.contains(province) else {
                throw ConfigurationError(
                    variable: "YUNZHEN_HOSPITAL_PROVINCE",
                    problem: "must be a province as patients' profiles name it, e.g. 北京")
            }
            hospitalProvince = province
        }
        if let password = environment.optionalString("YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD") {
            do {
                try StaffDirectory.checkPolicy(password, username: "admin")
            } catch {
                throw ConfigurationError(
                    variable: "YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD",
                    problem:
                        "needs 10 to 128 characters with three of: lower case, upper case, digits, symbols; not containing \"admin\""
                )
            }
            bootstrapAdminPassword = password
        }
    }
}

/// Which SMS provider sends sign-in codes (`YUNZHEN_SMS_GATEWAY`).
public enum SMSSettings: Sendable {
    /// Development only: messages are recorded in `<data>/registration/sandbox-sms.jsonl`.
    case sandbox(timeout: Duration)
    /// The provider's HTTPS endpoint (`YUNZHEN_SMS_URL`), key id and shared secret (`YUNZHEN_SMS_KEY_ID`,
    /// `YUNZHEN_SMS_SECRET`, at least 32 characters).
    case http(url: String, keyID: String, secret: String, timeout: Duration)

    enum Kind: String, CaseIterable { case sandbox, http }

    static func read(from environment: EnvironmentReader, deployment: DeploymentEnvironment) throws(ConfigurationError)
        -> SMSSettings
    {
        let timeout = Duration.milliseconds(
            try environment.integer("YUNZHEN_SMS_TIMEOUT_MS", default: 5000, in: 100...60_000))
        let kind: Kind = try environment.choice(
            "YUNZHEN_SMS_GATEWAY", default: deployment == .production ? .http : .sandbox)
        switch kind {
        case .sandbox:
            guard deployment == .development else {
                throw ConfigurationError(
                    variable: "YUNZHEN_SMS_GATEWAY",
                    problem: "sandbox only records messages and is refused in production; set http and YUNZHEN_SMS_URL")
            }
            return .sandbox(timeout: timeout)
        case .http:
            _ = try environment.requiredString("YUNZHEN_SMS_URL", "the SMS provider's https:// endpoint")
            let url = try environment.baseURL("YUNZHEN_SMS_URL", default: "")
            if deployment == .production && !url.hasPrefix("https://") {
                throw ConfigurationError(variable: "YUNZHEN_SMS_URL", problem: "must be https:// in production")
            }
            let keyID = try environment.requiredString("YUNZHEN_SMS_KEY_ID", "the key id the SMS provider gave us")
            let secret = try environment.requiredString("YUNZHEN_SMS_SECRET", "the secret shared with the SMS provider")
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(variable: "YUNZHEN_SMS_SECRET", problem: "must be at least 32 characters")
            }
            return .http(url: url, keyID: keyID, secret: secret, timeout: timeout)
        }
    }
}

/// Which payment provider takes patients' fees (`YUNZHEN_PAYMENT_GATEWAY`).
public enum PaymentSettings: Sendable {
    /// Development only: the sandbox provider inside registration, reached over HTTP on registration's own port;
    /// its notifications go to `notifyURL` (`YUNZHEN_PAYMENT_NOTIFY_URL`, default this service's own
    /// `/payments/notify`).
    case sandbox(port: Int, notifyURL: String)
    /// The provider's HTTPS API (`YUNZHEN_PAYMENT_URL`), key id and shared secret (`YUNZHEN_PAYMENT_KEY_ID`,
    /// `YUNZHEN_PAYMENT_SECRET`, at least 32 characters), and where it sends notifications
    /// (`YUNZHEN_PAYMENT_NOTIFY_URL`: our `/api/registration/payments/notify` as the internet reaches it).
    case http(url: String, keyID: String, secret: String, notifyURL: String, timeout: Duration)

    enum Kind: String, CaseIterable { case sandbox, http }

    static func read(from environment: EnvironmentReader, deployment: DeploymentEnvironment, port: Int)
        throws(ConfigurationError) -> PaymentSettings
    {
        let kind: Kind = try environment.choice(
            "YUNZHEN_PAYMENT_GATEWAY", default: deployment == .production ? .http : .sandbox)
        switch kind {
        case .sandbox:
            guard deployment == .development else {
                throw ConfigurationError(
                    variable: "YUNZHEN_PAYMENT_GATEWAY",
                    problem:
                        "sandbox takes no real money and is refused in production; set http and YUNZHEN_PAYMENT_URL")
            }
            if let notify = environment.optionalString("YUNZHEN_PAYMENT_NOTIFY_URL") {
                return .sandbox(
                    port: port, notifyURL: try environment.baseURL("YUNZHEN_PAYMENT_NOTIFY_URL", default: notify))
            }
            guard port != 0 else {
                throw ConfigurationError(
                    variable: "YUNZHEN_PAYMENT_NOTIFY_URL",
                    problem:
                        "is needed with the sandbox gateway when YUNZHEN_PORT is 0 (the provider must know where to call)"
                )
            }
            return .sandbox(port: port, notifyURL: "http://127.0.0.1:\(port)/payments/notify")
        case .http:
            _ = try environment.requiredString("YUNZHEN_PAYMENT_URL", "the payment provider's https:// API root")
            let url = try environment.baseURL("YUNZHEN_PAYMENT_URL", default: "")
            let notify = try environment.requiredString(
                "YUNZHEN_PAYMENT_NOTIFY_URL",
                "where the provider sends notifications (…/api/registration/payments/notify)")
            if deployment == .production && !(url.hasPrefix("https://") && notify.hasPrefix("https://")) {
                throw ConfigurationError(
                    variable: url.hasPrefix("https://") ? "YUNZHEN_PAYMENT_NOTIFY_URL" : "YUNZHEN_PAYMENT_URL",
                    problem: "must be https:// in production")
            }
            let keyID = try environment.requiredString(
                "YUNZHEN_PAYMENT_KEY_ID", "the key id the payment provider gave us")
            let secret = try environment.requiredString(
                "YUNZHEN_PAYMENT_SECRET", "the secret shared with the payment provider")
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(variable: "YUNZHEN_PAYMENT_SECRET", problem: "must be at least 32 characters")
            }
            let timeout = Duration.milliseconds(
                try environment.integer("YUNZHEN_PAYMENT_TIMEOUT_MS", default: 5000, in: 100...60_000))
            return .http(url: url, keyID: keyID, secret: secret, notifyURL: notify, timeout: timeout)
        }
    }
}
