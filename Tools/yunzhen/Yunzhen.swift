import ArgumentParser

/// The operator's command: run the platform locally, load demo data, look into the queue.
@main
struct Yunzhen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yunzhen",
        abstract: "Run and operate the yunzhen internet-hospital platform.",
        subcommands: [DevCommand.self, SeedCommand.self, QueueCommand.self, KeysCommand.self]
    )
}
