import ArgumentParser
import Foundation
import YunzhenIdentity

/// `yunzhen keys generate`: a new token-signing key, printed as the configuration lines that use it.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make the Ed25519 keys that sign and verify access tokens.",
        subcommands: [Generate.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new signing key and its public half as environment lines.",
            discussion: """
                YUNZHEN_AUTH_SIGNING_KEY goes to registration only (it signs people in) and is a secret: keep it \\
                in the unit's environment file, mode 0600. YUNZHEN_AUTH_VERIFY_KEYS goes to every service and the \\
                edge. To rotate: append the new public key to every YUNZHEN_AUTH_VERIFY_KEYS (comma-separated), \\
                restart them, switch registration's signing key, and drop the old public key 15 minutes later.
                """
        )
        @Option(help: "The key's id, carried in every token it signs (default: today's date).")
        var kid: String?

        func run() throws {
            let keyID = kid ?? Date().formatted(.iso8601.year().month().day())
            let key: SigningKey
            do {
                key = try SigningKey.generate(keyID: keyID)
            } catch {
                throw ValidationError("--kid: \(error)")
            }
            print("YUNZHEN_AUTH_SIGNING_KEY=\(key.configurationText)")
            print("YUNZHEN_AUTH_VERIFY_KEYS=\(key.verificationKey.configurationText)")
        }
    }
}
