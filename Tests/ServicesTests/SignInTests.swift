import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenAudit
import YunzhenCallout
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

@testable import RegistrationService

/// Patients signing up and in with an SMS code, through registration's routes on a real SQLite database, with the
/// sandbox SMS gateway recording the messages to a file the test reads as a phone would.
@Suite struct SignInTests {
    struct Harness {
        let database: ServiceDatabase
        let directory: URL

        /// The last code texted to `phone`.
        func lastCode(to phone: String) throws -> String {
            let text = try String(contentsOf: directory.appendingPathComponent("sandbox-sms.jsonl"), encoding: .utf8)
            let line = try #require(text.split(separator: "\n").last { $0.contains("\"to\":\"\(phone)\"") })
            let match = try #require(line.firstMatch(of: /"code":"(\d{6})"/))
            return String(match.1)
        }
    }

    static func withRegistration(
        _ body: @escaping @Sendable (any TestClientProtocol, Harness) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("yunzhen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let router = buildRouter(
            database: database, identity: await TestIdentity.registration(directory: directory))
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        try await app.test(.router) { client in
            try await body(client, Harness(database: database, directory: directory))
        }
    }

    static func post(_ client: any TestClientProtocol, _ path: String, _ json: [String: String]) async throws
        -> TestResponse
    {
        try await client.execute(
            uri: path, method: .post, headers: [.contentType: "application/json"],
            body: ByteBuffer(bytes: try JSONEncoder().encode(json)))
    }

    static func problem(_ response: TestResponse) throws -> ProblemDocument {
        try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
    }

    static func session(_ response: TestResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as! [String: Any]
    }

    @Test func aNewNumberSignsUpThenSignsInToTheSameAccount() async throws {
        try await Self.withRegistration { client, harness in
            let sent = try await Self.post(client, "/auth/sms-codes", ["phone": "+86 138-1234-5678"])
            #expect(sent.status == .accepted)
            #expect(String(buffer: sent.body).contains("138****5678"))
            let first = try await Self.post(
                client, "/auth/sign-in", ["phone": "13812345678", "code": try harness.lastCode(to: "13812345678")])
            #expect(first.status == .created)
            let account = try #require(try Self.session(first)["accountId"] as? String)
            let token = try #require(try Self.session(first)["accessToken"] as? String)

            try await client.execute(uri: "/me", method: .get, headers: [.authorization: "Bearer \(token)"]) {
                response throws in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains(account) && body.contains("138****5678") && !body.contains("13812345678"))
            }
            // A second sign-in (after the resend wait) reaches the same account.
            try await harness.database.writer.write { db in
                try db.execute(sql: "UPDATE sign_in_code SET sent_at = datetime(sent_at, '-2 minutes')")
            }
            _ = try await Self.post(client, "/auth/sms-codes", ["phone": "13812345678"])
            let second = try await Self.post(
                client, "/auth/sign-in", ["phone": "13812345678", "code": try harness.lastCode(to: "13812345678")])
            #expect(second.status == .ok)
            #expect(try Self.session(second)["accountId"] as? String == account)

            // Sign-ins and the read of the account are in the audit trail, and the chain holds.
            let trail = try await harness.database.writer.read { db in
                (try AuditTrail.page(AuditQuery(actor: account), in: db), try AuditTrail.verify(in: db))
            }
            #expect(trail.0.map(\.resourceType) == ["session", "account", "session"])
            #expect(trail.0.map(\.action) == ["create", "read", "update"])
            #expect(trail.1.intact)
        }
    }

    @Test func wrongCodesCountDownThenTheCodeIsExhausted() async throws {
        try await Self.withRegistration { client, harness in
            _ = try await Self.post(client, "/auth/sms-codes", ["phone": "13900001111"])
            let code = try harness.lastCode(to: "13900001111")
            let wrong = code == "000000" ? "111111" : "000000"
            for left in [4, 3, 2, 1] {
                let response = try await Self.post(client, "/auth/sign-in", ["phone": "13900001111", "code": wrong])
                #expect(response.status == .unauthorized)
                #expect(try Self.problem(response).code == "code-invalid")
                #expect(try Self.problem(response).detail.contains("\(left) tr"))
            }
            let fifth = try await Self.post(client, "/auth/sign-in", ["phone": "13900001111", "code": wrong])
            #expect(fifth.status == .tooManyRequests)
            #expect(try Self.problem(fifth).code == "code-exhausted")
            // Even the right code no longer works.
            let right = try await Self.post(client, "/auth/sign-in", ["phone": "13900001111", "code": code])
            #expect(try Self.problem(right).code == "code-exhausted")
        }
    }

    @Test func eachRuleOfCodesHasItsOwnProblem() async throws {
        try await Self.withRegistration { client, harness in
            let cases: [([String: String], String, HTTPResponse.Status, String)] = [
                (["phone": "12812345678"], "/auth/sms-codes", .unprocessableContent, "invalid-phone"),
                (["phone": "1381234567"], "/auth/sms-codes", .unprocessableContent, "invalid-phone"),
                (["phone": "13700000000"], "/auth/sms-codes", .badGateway, "sms-unavailable"),
                (["phone": "13611112222", "code": "123456"], "/auth/sign-in", .unauthorized, "code-not-requested"),
                (["phone": "13611112222", "code": "12ab56"], "/auth/sign-in", .unprocessableContent, "invalid-code"),
                (["code": "123456"], "/auth/sign-in", .badRequest, "invalid-body"),
            ]
            for (body, path, status, code) in cases {
                let response = try await Self.post(client, path, body)
                #expect(response.status == status, "\(path) \(body)")
                #expect(try Self.problem(response).code == code, "\(path) \(body)")
            }
            _ = try await Self.post(client, "/auth/sms-codes", ["phone": "13511112222"])
            let again = try await Self.post(client, "/auth/sms-codes", ["phone": "13511112222"])
            #expect(again.status == .tooManyRequests)
            #expect(try Self.problem(again).code == "resend-too-soon")

            // An expired code.
            try await harness.database.writer.write { db in
                try db.execute(sql: "UPDATE sign_in_code SET expires_at = datetime('now', '-1 second')")
            }
            let late = try await Self.post(
                client, "/auth/sign-in", ["phone": "13511112222", "code": try harness.lastCode(to: "13511112222")])
            #expect(try Self.problem(late).code == "code-expired")
        }
    }

    @Test func aNumberAndAnAddressAreLimited() async throws {
        try await Self.withRegistration { client, harness in
            for attempt in 0..<5 {
                let response = try await Self.post(client, "/auth/sms-codes", ["phone": "13411112222"])
                #expect(response.status == .accepted, "attempt \(attempt)")
                try await harness.database.writer.write { db in
                    try db.execute(sql: "UPDATE sign_in_code SET sent_at = datetime(sent_at, '-61 seconds')")
                }
            }
            let sixth = try await Self.post(client, "/auth/sms-codes", ["phone": "13411112222"])
            #expect(try Self.problem(sixth).code == "too-many-codes")

            // Many numbers from one address: the 31st in an hour is refused.
            for index in 0..<25 {
                _ = try await Self.post(
                    client, "/auth/sms-codes", ["phone": "1330000\(String(format: "%04d", index + 2))"])
            }
            let refused = try await Self.post(client, "/auth/sms-codes", ["phone": "13200003333"])
            #expect(refused.status == .tooManyRequests)
            #expect(try Self.problem(refused).code == "too-many-requests")
        }
    }

    @Test func refreshTokensRotateAndAReusedOneEndsTheSession() async throws {
        try await Self.withRegistration { client, harness in
            _ = try await Self.post(client, "/auth/sms-codes", ["phone": "13812340099"])
            let signedIn = try Self.session(
                try await Self.post(
                    client, "/auth/sign-in",
                    ["phone": "13812340099", "code": try harness.lastCode(to: "13812340099")]))
            let first = try #require(signedIn["refreshToken"] as? String)

            let rotated = try await Self.post(client, "/auth/refresh", ["refreshToken": first])
            #expect(rotated.status == .ok)
            let second = try #require(try Self.session(rotated)["refreshToken"] as? String)
            #expect(second != first)

            // The first one again: someone else has a copy. The whole session ends, the new token with it.
            let reused = try await Self.post(client, "/auth/refresh", ["refreshToken": first])
            #expect(reused.status == .unauthorized)
            #expect(try Self.problem(reused).code == "refresh-token-reused")
            let afterTheft = try await Self.post(client, "/auth/refresh", ["refreshToken": second])
            #expect(try Self.problem(afterTheft).code == "refresh-token-invalid")

            // A fresh session, then sign-out: its refresh token no longer works.
            try await harness.database.writer.write { db in
                try db.execute(sql: "UPDATE sign_in_code SET sent_at = datetime(sent_at, '-2 minutes')")
            }
            _ = try await Self.post(client, "/auth/sms-codes", ["phone": "13812340099"])
            let again = try Self.session(
                try await Self.post(
                    client, "/auth/sign-in",
                    ["phone": "13812340099", "code": try harness.lastCode(to: "13812340099")]))
            let third = try #require(again["refreshToken"] as? String)
            let out = try await Self.post(client, "/auth/sign-out", ["refreshToken": third])
            #expect(out.status == .noContent)
            let afterSignOut = try await Self.post(client, "/auth/refresh", ["refreshToken": third])
            #expect(try Self.problem(afterSignOut).code == "refresh-token-invalid")
            // Garbage is refused the same way, without revealing anything.
            let garbage = try await Self.post(client, "/auth/refresh", ["refreshToken": "x.y"])
            #expect(try Self.problem(garbage).code == "refresh-token-invalid")
        }
    }

    @Test func theAccountNeedsAValidPatientToken() async throws {
        try await Self.withRegistration { client, _ in
            let other = try SigningKey.generate(keyID: TestIdentity.signingKey.keyID)
            let (forged, _) = try await TokenIssuer(signingKey: other).issue(
                subject: "acct_x", kind: .patient, roles: [.patient])
            let (staff, _) = try await TokenIssuer(signingKey: TestIdentity.signingKey).issue(
                subject: "staff_1", kind: .staff, roles: [.doctor])
            let cases: [(HTTPFields, HTTPResponse.Status)] = [
                (HTTPFields(), .unauthorized), ([.authorization: "Bearer \(forged)"], .unauthorized),
                ([.authorization: "Bearer \(staff)"], .forbidden),
            ]
            for (headers, status) in cases {
                try await client.execute(uri: "/me", method: .get, headers: headers) { response in
                    #expect(response.status == status)
                }
            }
        }
    }
}

/// The production SMS adapter against a provider on a real socket: signed requests, and each way a provider fails.
@Suite struct HTTPSMSGatewayTests {
    static let secret = String(repeating: "s", count: 40)

    @Test func requestsAreSignedAndFailuresClassified() async throws {
        let router = Router()
        router.post("/messages") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 * 1024)
            let signing = MessageSigning(keyID: "hospital-1", secret: Self.secret)
            guard
                (try? signing.verify(
                    body: Array(buffer: body), header: { request.headers[HTTPField.Name($0)!] })) != nil
            else {
                return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: "bad signature")))
            }
            let to = (try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["to"] as? String
            switch to {
            case "13800000001":
                return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "invalid number")))
            case "13800000002": return Response(status: .serviceUnavailable)
            case "13800000003":
                try await Task.sleep(for: .seconds(2))
                return Response(status: .ok)
            default: return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"messageId":"m1"}"#)))
            }
        }
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            .test(.live) { client in
                let callout = CalloutClient()
                defer { callout.shutdown() }
                func gateway(secret: String = Self.secret) -> HTTPSMSGateway {
                    HTTPSMSGateway(
                        client: callout, url: "http://127.0.0.1:\(client.port!)/messages",
                        signing: MessageSigning(keyID: "hospital-1", secret: secret), timeout: .milliseconds(500))
                }
                func message(_ to: String) -> SMSMessage {
                    SMSMessage(to: to, template: "SIGN_IN_CODE", parameters: ["code": "123456"], text: "…")
                }
                try await gateway().send(message("13812345678"))
                await #expect(throws: SMSFailure.rejected("HTTP 400: invalid number")) {
                    try await gateway().send(message("13800000001"))
                }
                await #expect(throws: SMSFailure.rejected("HTTP 401: bad signature")) {
                    try await gateway(secret: String(repeating: "t", count: 40)).send(message("13812345678"))
                }
                let unavailable = await #expect(throws: SMSFailure.self) {
                    try await gateway().send(message("13800000002"))
                }
                #expect(unavailable.map { if case .unavailable = $0 { true } else { false } } == true)
                let timedOut = await #expect(throws: SMSFailure.self) {
                    try await gateway().send(message("13800000003"))
                }
                #expect("\(timedOut!)".contains("500 ms") || "\(timedOut!)".contains("0.5 seconds"))
            }
    }
}
