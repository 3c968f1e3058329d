import ArgumentParser
import Dispatch
import Foundation
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity

/// `yunzhen dev`: runs the five services and the edge from one folder of built executables, for local work.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Start all six processes with one data root; restart any that crashes; Ctrl-C stops them all."
    )

    @Option(help: "Data root shared by the services (databases, queue).")
    var data: String = ".data/dev"

    @Option(help: "Folder with the built executables (default: the folder of this yunzhen executable).")
    var bin: String?

    @Option(help: "Folder of the web clients the edge serves.")
    var publicDir: String = "Services/edge/Public"

    @Option(help: "The edge's public port.")
    var edgePort: Int = defaultEdgePort

    @Option(help: "Services listen on base+1 … base+5 (registration, reports, consult, followup, screening).")
    var servicePortBase: Int = 8100

    @Option(help: "Load the seeds in this folder once every service is ready.")
    var seed: String?

    mutating func run() async throws {
        let dataRoot = URL(fileURLWithPath: data).standardizedFileURL
        try FileManager.default.createDirectory(at: dataRoot, withIntermediateDirectories: true)
        let binDirectory = bin.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? Self.ownDirectory()
        let publicDirectory = URL(fileURLWithPath: publicDir).standardizedFileURL
        let signingKey = try SigningKeyFile.loadOrCreate(in: dataRoot)
        let adminPassword = try AdminPasswordFile.loadOrCreate(in: dataRoot)

        var environment = ProcessInfo.processInfo.environment
        environment["YUNZHEN_DATA"] = dataRoot.path
        environment["YUNZHEN_LOG_FORMAT"] = environment["YUNZHEN_LOG_FORMAT"] ?? "text"
        environment["NOTIFY_SOCKET"] = nil
        // A developer's machine: sandbox adapters (SMS, payment) are allowed, and every process trusts the key.
        environment["YUNZHEN_ENVIRONMENT"] = "development"
        environment["YUNZHEN_AUTH_VERIFY_KEYS"] = signingKey.verificationKey.configurationText

        var children: [ChildSpec] = []
        for service in ServiceName.allCases {
            var childEnvironment = environment
            childEnvironment["YUNZHEN_PORT"] = "\(servicePortBase + service.portOffset)"
            if service == .registration {
                childEnvironment["YUNZHEN_AUTH_SIGNING_KEY"] = signingKey.configurationText
                childEnvironment["YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD"] = adminPassword
            }
            children.append(
                ChildSpec(
                    name: service.rawValue, executable: binDirectory.appendingPathComponent(service.rawValue),
                    environment: childEnvironment
                ))
        }
        var edgeEnvironment = environment
        edgeEnvironment["YUNZHEN_PORT"] = "\(edgePort)"
        edgeEnvironment["YUNZHEN_EDGE_PUBLIC_DIR"] = publicDirectory.path
        for service in ServiceName.allCases {
            edgeEnvironment[service.upstreamVariable] = "http://127.0.0.1:\(servicePortBase + service.portOffset)"
        }
        children.append(
            ChildSpec(
                name: "edge", executable: binDirectory.appendingPathComponent("edge"), environment: edgeEnvironment))

        for child in children where !FileManager.default.isExecutableFile(atPath: child.executable.path) {
            throw ValidationError(
                "\(child.executable.path) is missing: build first (`swift build -c release`), or pass --bin.")
        }

        let supervisor = Supervisor(children: children)
        supervisor.start()
        let edge = "http://127.0.0.1:\(edgePort)"
        let client = CalloutClient()
        let ready = await PlatformProbe.waitUntilReady(edge: edge, client: client, timeout: .seconds(60)) {
            supervisor.isStopping
        }
        if supervisor.isStopping {
            // Stopped during start-up: nothing to seed or announce.
        } else if ready {
            if let seed {
                do {
                    let seeder = try await Seeder(
                        edge: edge,
                        registration: "http://127.0.0.1:\(servicePortBase + ServiceName.registration.portOffset)",
                        signingKey: signingKey, client: client)
                    let summary = try await seeder.load(
                        from: URL(fileURLWithPath: seed), passwordsFile: dataRoot)
                    supervisor.say("seeded: \(summary)")
                } catch {
                    supervisor.say("seeding failed: \(error)")
                }
            }
            supervisor.say(
                """
                yunzhen is running (data in \(dataRoot.path)). Ctrl-C stops everything.
                  patient app     http://localhost:\(edgePort)/
                  platform health http://localhost:\(edgePort)/health
                  service APIs    http://localhost:\(edgePort)/api/<service>/openapi.yaml
                  first admin     username admin, password in \(dataRoot.path)/admin.password (change it at first sign-in:
                                  POST /api/registration/auth/staff/sign-in, then /auth/staff/password)
                  demo staff      usernames and temporary passwords in \(dataRoot.path)/demo-staff.txt (when seeded)
                """
            )
        } else {
            supervisor.say("not every service became ready within 60 s; see the log lines above (still supervising)")
        }
        await supervisor.waitUntilStopped()
    }

    static func ownDirectory() -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }
}

/// A secret of a development data root, made once and kept in `<data>/<name>` (mode 0600), so restarts of
/// `yunzhen dev` on the same data keep working with it.
enum DevSecretFile {
    /// The file's content when `accept` takes it; otherwise a new `make()`, written to the file.
    static func loadOrCreate<Value>(
        _ name: String, in dataRoot: URL, accept: (String) -> Value?, make: () throws -> (text: String, value: Value)
    ) throws -> Value {
        let file = dataRoot.appendingPathComponent(name)
        if let text = try? String(contentsOf: file, encoding: .utf8),
            let value = accept(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return value
        }
        let made = try make()
        let written = FileManager.default.createFile(
            atPath: file.path, contents: Data(made.text.utf8), attributes: [.posixPermissions: 0o600])
        guard written else { throw ValidationError("cannot write \(file.path)") }
        return made.value
    }
}

/// The token-signing key of a development data root (`<data>/auth-signing.key`).
enum SigningKeyFile {
    static func loadOrCreate(in dataRoot: URL) throws -> SigningKey {
        try DevSecretFile.loadOrCreate(
            "auth-signing.key", in: dataRoot, accept: { try? SigningKey(configuration: $0) },
            make: {
                let key = try SigningKey.generate(keyID: "dev")
                return (key.configurationText, key)
            })
    }

    /// The key of a data root that `yunzhen dev` made.
    static func load(from dataRoot: URL) throws -> SigningKey {
        let file = dataRoot.appendingPathComponent("auth-signing.key")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw ValidationError(
                "No signing key: \(file.path) is missing. Pass --data of a `yunzhen dev` run, or set YUNZHEN_AUTH_SIGNING_KEY."
            )
        }
        return try SigningKey(configuration: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// The first admin's password on a development data root (`<data>/admin.password`); registration uses it only
/// while no admin exists.
enum AdminPasswordFile {
    static func loadOrCreate(in dataRoot: URL) throws -> String {
        try DevSecretFile.loadOrCreate(
            "admin.password", in: dataRoot, accept: { $0.isEmpty ? nil : $0 },
            make: {
                // Upper case, digits and a symbol around the random part, so it always meets the password rules.
                let password = "Yz-\(Secrets.randomHex(bytes: 6))-A1"
                return (password, password)
            })
    }
}

/// Polls the edge's `/health` until every service is ready.
enum PlatformProbe {
    static func waitUntilReady(
        edge: String,
        client: CalloutClient,
        timeout: Duration,
        givenUp: () -> Bool = { false }
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !givenUp() {
            if let response = try? await client.execute(CalloutRequest(url: edge + "/health", timeout: .seconds(3))),
                response.status == 200
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}
