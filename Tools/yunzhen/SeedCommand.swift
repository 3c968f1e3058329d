import ArgumentParser
import Foundation
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity

/// `yunzhen seed`: loads the demo data in `seeds/` through the services' public APIs, as a client would.
struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract:
            "Load seed data (departments, staff, teams, doctors, two weeks of sessions, demo patients) through the edge. Safe to run again: records are upserted."
    )

    @Option(help: "The edge's base URL.")
    var edge: String = "http://127.0.0.1:\(defaultEdgePort)"

    @Option(help: "Registration's own URL (loopback), whose sandbox SMS gateway gives the demo patients' codes.")
    var registration: String = "http://127.0.0.1:8101"

    @Option(help: "Folder of seed files.")
    var seeds: String = "seeds"

    @Option(
        help:
            "Data root of a `yunzhen dev` run: its auth-signing.key signs the seed's admin token, and new staff's temporary passwords go to its demo-staff.txt."
    )
    var data: String?

    mutating func run() async throws {
        // The seed acts as an admin with a short token it signs itself: whoever can read the deployment's signing
        // key is already trusted with every token. A named data root wins over the environment, which is how a
        // production operator passes the deployment's key (from registration.env).
        let dataRoot = data.map { URL(fileURLWithPath: $0) }
        let signingKey: SigningKey
        if let dataRoot {
            signingKey = try SigningKeyFile.load(from: dataRoot)
        } else if let text = ProcessInfo.processInfo.environment["YUNZHEN_AUTH_SIGNING_KEY"] {
            signingKey = try SigningKey(configuration: text)
        } else {
            signingKey = try SigningKeyFile.load(from: URL(fileURLWithPath: ".data/dev"))
        }
        let client = CalloutClient()
        defer { client.shutdown() }
        let seeder = try await Seeder(
            edge: edge, registration: registration, signingKey: signingKey, client: client)
        let summary = try await seeder.load(from: URL(fileURLWithPath: seeds), passwordsFile: dataRoot)
        print("seeded: \(summary)")
    }
}
