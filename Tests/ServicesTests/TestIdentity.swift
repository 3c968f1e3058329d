import Foundation
import RegistrationService
import YunzhenIdentity

/// The token keys of the service tests: one signing key, and registration's development identity over it.
enum TestIdentity {
    static let signingKey = try! SigningKey.generate(keyID: "test-2026")

    /// A verifier that trusts `signingKey`, as the other services are configured.
    static func verifier() async -> TokenVerifier {
        await TokenVerifier(publicKeys: [signingKey.verificationKey])
    }

    /// A signed access token, as registration would issue it.
    static func token(
        _ subject: String, kind: Principal.Kind = .staff, roles: Set<Role>, departments: Set<String> = [],
        teams: Set<String> = []
    ) async throws -> String {
        try await TokenIssuer(signingKey: signingKey).issue(
            subject: subject, kind: kind, roles: roles, departments: departments, teams: teams
        ).token
    }

    /// Registration signing with `signingKey`, its sandbox SMS recording into `directory` (a fresh temporary one
    /// by default).
    static func registration(directory: URL? = nil) async -> RegistrationIdentity {
        let directory =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("yunzhen-sms-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return await RegistrationIdentity.development(signingKey: signingKey, directory: directory)
    }
}
