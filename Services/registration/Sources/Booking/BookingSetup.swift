import Foundation
import Logging
import YunzhenCallout
import YunzhenIdentity
import YunzhenServiceKit

/// What booking runs with: the rules, the payment gateway (and the sandbox provider behind it in development),
/// and the clock (the tests move it).
public struct BookingSetup: Sendable {
    let policy: BookingPolicy
    let gateway: any PaymentGateway
    let sandbox: SandboxPaymentProvider?
    let clock: @Sendable () -> Date
    let logger: Logger
    /// The hospital's province, for the out-of-province statistics.
    var province = "北京"

    init(
        policy: BookingPolicy, gateway: any PaymentGateway, sandbox: SandboxPaymentProvider?,
        clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.policy = policy
        self.gateway = gateway
        self.sandbox = sandbox
        self.clock = clock
        self.logger = logger
    }

    static func make(configuration: RegistrationConfiguration, client: CalloutClient, logger: Logger) throws
        -> BookingSetup
    {
        switch configuration.payment {
        case .sandbox(let port, let notifyURL):
            let signing = MessageSigning(keyID: "sandbox", secret: Secrets.randomHex(bytes: 32))
            // The provider's own database sits beside registration's; made before the service opens its own.
            try FileManager.default.createDirectory(
                at: configuration.dataDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o750])
            let provider = try SandboxPaymentProvider(
                file: configuration.dataDirectory.appendingPathComponent("sandbox-pay.sqlite"), signing: signing,
                client: client, logger: logger)
            logger.warning("payments go to the sandbox payment provider (development only)")
            let gateway = HTTPPaymentGateway(
                client: client, baseURL: "http://127.0.0.1:\(port)/sandbox-pay/api", notifyURL: notifyURL,
                signing: signing, timeout: .seconds(5))
            var setup = BookingSetup(policy: configuration.booking, gateway: gateway, sandbox: provider, logger: logger)
            setup.province = configuration.hospitalProvince
            return setup
        case .http(let url, let keyID, let secret, let notifyURL, let timeout):
            let gateway = HTTPPaymentGateway(
                client: client, baseURL: url, notifyURL: notifyURL,
                signing: MessageSigning(keyID: keyID, secret: secret),
                timeout: timeout)
            var setup = BookingSetup(policy: configuration.booking, gateway: gateway, sandbox: nil, logger: logger)
            setup.province = configuration.hospitalProvince
            return setup
        }
    }

    /// For routers built without payment configured (tests that do not pay): a gateway on a port nobody listens
    /// on, whose notifications are signed with `signing`.
    public static func unreachableGateway(
        signing secret: String = "offline-secret-offline-secret-0000",
        clock: @escaping @Sendable () -> Date = { Date() }
    ) -> BookingSetup {
        let gateway = HTTPPaymentGateway(
            client: CalloutClient(), baseURL: "http://127.0.0.1:9/unreachable", notifyURL: "http://127.0.0.1:9/notify",
            signing: MessageSigning(keyID: "offline", secret: secret), timeout: .milliseconds(300))
        return BookingSetup(
            policy: BookingPolicy(), gateway: gateway, sandbox: nil, clock: clock, logger: Logger(label: "booking"))
    }
}
