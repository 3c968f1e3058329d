import FollowupService
import YunzhenServiceKit

await ServiceMain.run("followup", configuration: FollowupConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
