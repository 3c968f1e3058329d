import ConsultService
import YunzhenServiceKit

await ServiceMain.run("consult", configuration: ConsultConfiguration.self) { configuration, logger in
    try await buildApplication(configuration: configuration, logger: logger)
}
