import ScreeningService
import YunzhenServiceKit

await ServiceMain.run("screening", configuration: ScreeningConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
