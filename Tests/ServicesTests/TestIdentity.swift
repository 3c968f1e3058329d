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
