import EdgeService
import YunzhenServiceKit

await ServiceMain.run("edge", configuration: EdgeConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
