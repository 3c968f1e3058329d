import ReportsService
import YunzhenServiceKit

await ServiceMain.run("reports", configuration: ReportsConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
