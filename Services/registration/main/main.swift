import RegistrationService
import YunzhenServiceKit

await ServiceMain.run("registration", configuration: RegistrationConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
