import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenTesting

/// Access tokens as every service sees them: issued by one key, verified against the configured public keys,
/// refused when expired, forged or signed by a key nobody trusts, with a 401 problem that says which.
@Suite struct IdentityTests {
    static let current = try! SigningKey.generate(keyID: "2026-11")
    static let previous = try! SigningKey.generate(keyID: "2026-10")

    @Test func aTokenRoundTripsWithItsClaims() async throws {
        let issuer = await TokenIssuer(signingKey: Self.current)
        let verifier = await TokenVerifier(publicKeys: [Self.current.verificationKey])
        let (token, issued) = try await issuer.issue(subject: "staff_7", kind: .staff, roles: [.doctor, .scheduler])
        let principal = try await verifier.verify(token)
        #expect(principal == issued)
        #expect(principal.roles == [.doctor, .scheduler])
        #expect(abs(principal.expiresAt.timeIntervalSinceNow - 15 * 60) < 5)
        #expect(principal.auditRole == "doctor")
    }

    @Test func expiredForgedAndUnknownKeyTokensAreRefused() async throws {
        let verifier = await TokenVerifier(publicKeys: [Self.current.verificationKey])
        let issuer = await TokenIssuer(signingKey: Self.current)
        let (expired, _) = try await issuer.issue(
            subject: "acct_1", kind: .patient, roles: [.patient], now: Date().addingTimeInterval(-16 * 60))
        await #expect(throws: TokenRejection.expired) { try await verifier.verify(expired) }

        // Signed by a key with the trusted key's id: the signature gives it away.
        let impostor = try SigningKey.generate(keyID: "2026-11")
        let (forged, _) = try await TokenIssuer(signingKey: impostor).issue(
            subject: "acct_1", kind: .patient, roles: [.admin])
        await #expect(throws: TokenRejection.invalid("its signature does not match any key this service trusts")) {
            try await verifier.verify(forged)
        }
        // Signed by a key this service was never given.
        let (unknown, _) = try await TokenIssuer(signingKey: Self.previous).issue(
            subject: "acct_1", kind: .patient, roles: [.patient])
        await #expect(throws: TokenRejection.invalid("it was signed with a key this service does not know")) {
            try await verifier.verify(unknown)
        }
        // A payload edited after signing (a patient making themselves admin).
        let (genuine, _) = try await issuer.issue(subject: "acct_1", kind: .patient, roles: [.patient])
        let parts = genuine.split(separator: ".").map(String.init)
        var claims = try JSONSerialization.jsonObject(with: Self.base64URLDecode(parts[1])) as! [String: Any]
        claims["roles"] = ["admin"]
        let edited = [parts[0], Self.base64URLEncode(try JSONSerialization.data(withJSONObject: claims)), parts[2]]
            .joined(separator: ".")
        await #expect(throws: TokenRejection.self) { try await verifier.verify(edited) }
        await #expect(throws: TokenRejection.invalid("it is not a well-formed JWT")) {
            try await verifier.verify("not-a-token")
        }
    }

    @Test func duringARotationTokensOfBothKeysAreAccepted() async throws {
        let verifier = await TokenVerifier(publicKeys: [Self.previous.verificationKey, Self.current.verificationKey])
        for key in [Self.previous, Self.current] {
            let (token, _) = try await TokenIssuer(signingKey: key).issue(
                subject: "acct_9", kind: .patient, roles: [.patient])
            #expect(try await verifier.verify(token).subject == "acct_9")
        }
    }

    @Test func keysAreReadFromConfigurationTextAndBadOnesNamed() throws {
        let key = try SigningKey(configuration: Self.current.configurationText)
        #expect(key.keyID == "2026-11")
        let keys = try VerificationKey.list(
            configuration: Self.previous.verificationKey.configurationText + ","
                + Self.current.verificationKey.configurationText)
        #expect(keys.map(\.keyID) == ["2026-10", "2026-11"])
        #expect(throws: KeyConfigurationError.badKey("expected <key id>:<base64 key>")) {
            try SigningKey(configuration: "no-colon")
        }
        #expect(throws: KeyConfigurationError.badKey("the private key must be 32 bytes, base64-encoded")) {
            try SigningKey(configuration: "k1:AAAA")
        }
        #expect(throws: KeyConfigurationError.badKey("key id 2026-11 appears twice")) {
            try VerificationKey.list(
                configuration: Self.current.verificationKey.configurationText + ","
                    + Self.current.verificationKey.configurationText)
        }
        #expect(throws: KeyConfigurationError.badKey("a key id is 1 to 64 of A-Z a-z 0-9 - _ .")) {
            try SigningKey(keyID: "bad id", rawPrivateKey: Data(count: 32))
        }
    }

    @Test func guardedRoutesAnswer401ProblemsThatSayWhatIsWrong() async throws {
        let verifier = await TokenVerifier(publicKeys: [Self.current.verificationKey])
        let issuer = await TokenIssuer(signingKey: Self.current)
        let router = ServiceApplication.makeRouter()
        router.group("me").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get { _, context in try context.requirePrincipal().subject }
            .get("admin") { _, context in try context.requireRole(.admin).subject }
        let app = ServiceApplication.make(
            name: "test", router: router, settings: ServerSettings(port: 0), logger: CapturedLogs().logger())
        let (patient, _) = try await issuer.issue(subject: "acct_1", kind: .patient, roles: [.patient])
        let (expired, _) = try await issuer.issue(
            subject: "acct_1", kind: .patient, roles: [.patient], now: Date().addingTimeInterval(-3600))
        try await app.test(.router) { client in
            let cases: [(HTTPFields, String, HTTPResponse.Status, String?)] = [
                ([:], "/me", .unauthorized, "authentication-required"),
                ([.authorization: "Basic dXNlcjpwYXNz"], "/me", .unauthorized, "invalid-token"),
                ([.authorization: "Bearer \(expired)"], "/me", .unauthorized, "token-expired"),
                ([.authorization: "Bearer \(patient)x"], "/me", .unauthorized, "invalid-token"),
                ([.authorization: "Bearer \(patient)"], "/me", .ok, nil),
                ([.authorization: "Bearer \(patient)"], "/me/admin", .forbidden, "role-required"),
            ]
            for (headers, path, status, code) in cases {
                try await client.execute(uri: path, method: .get, headers: headers) { response throws in
                    #expect(response.status == status, "\(path) with \(headers)")
                    if let code {
                        #expect(response.headers[.contentType] == "application/problem+json")
                        let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                        #expect(problem.code == code)
                    } else {
                        #expect(String(buffer: response.body) == "acct_1")
                    }
                }
            }
        }
    }

    static func base64URLDecode(_ text: String) -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)!
    }

    static func base64URLEncode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
