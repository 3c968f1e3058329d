import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenTesting

@testable import EdgeService

/// Which routes the edge lets through without a token, and what it does to the rest before any service hears of
/// them.
@Suite struct EdgeAccessTests {
    static func access(_ path: String, _ method: HTTPRequest.Method = .get) throws -> EdgeAccess {
        EdgeAccess.of(try ProxyRules.target(forRawPath: path), method: method)
    }

    @Test func onlyTheListedRoutesAreOpen() throws {
        let open = [
            "/api/registration/departments", "/api/registration/departments/hematology",
            "/api/registration/auth/refresh", "/api/registration/auth/sign-out", "/api/reports/openapi.yaml",
            "/api/registration/departments?x=1",
        ]
        for path in open { #expect(try Self.access(path) == .open, "\(path)") }
        #expect(try Self.access("/api/registration/auth/sms-codes", .post) == .signIn)
        #expect(try Self.access("/api/registration/auth/sign%2Din", .post) == .signIn)
        let protected = [
            "/api/registration/me", "/api/registration/me/patients/pat_1", "/api/registration/admin/audit",
            "/api/registration/departments/hematology/secret", "/api/registration/auth/anything",
            "/api/reports/anything", "/api/consult/departments", "/api/screening/auth/sign-in",
            "/api/registration/Me", "/api/registration/",
        ]
        for path in protected { #expect(try Self.access(path) == .signedIn, "\(path)") }
        // Reading the catalogue is public; writing it is not.
        #expect(try Self.access("/api/registration/departments/hematology", .put) == .signedIn)
        for path in [
            "/api/registration/doctors", "/api/registration/doctors/wang-jian",
            "/api/registration/doctors/wang-jian/photo",
            "/api/registration/sessions?from=2026-12-01", "/api/registration/sessions/ses_1",
            "/api/registration/sandbox-pay/pay/ord_1",
        ] {
            #expect(try Self.access(path) == .open, "\(path)")
        }
        #expect(try Self.access("/api/registration/payments/notify", .post) == .open)
        for (path, method) in [
            ("/api/registration/doctors/wang-jian/photo", HTTPRequest.Method.put),
            ("/api/registration/sessions", .post), ("/api/registration/sessions/ses_1/stop", .post),
            ("/api/registration/sandbox-pay/api/orders", .post), ("/api/registration/payments/notify", .get),
            ("/api/registration/appointments", .post),
        ] {
            #expect(try Self.access(path, method) == .signedIn, "\(method) \(path)")
        }
        // 科普 articles are read by anyone; written by staff only.
        for path in [
            "/api/screening/articles", "/api/screening/articles?q=%E5%8F%91%E7%83%AD", "/api/screening/articles/tags",
            "/api/screening/articles/art_1", "/api/screening/articles/art_1/cover",
        ] {
            #expect(try Self.access(path) == .open, "\(path)")
        }
        for (path, method) in [
            ("/api/screening/articles", HTTPRequest.Method.post), ("/api/screening/articles/art_1", .put),
            ("/api/screening/articles/art_1/cover", .put), ("/api/screening/articles/art_1/cover/x", .get),
            ("/api/screening/screenings/scr_1/pass", .get), ("/api/screening/gate/checks", .post),
        ] {
            #expect(try Self.access(path, method) == .signedIn, "\(method) \(path)")
        }
    }

    @Test func aBucketAllowsItsRateAndRefills() {
        let limiter = SignInRateLimiter(perMinute: 6)
        let start = ContinuousClock.now
        for _ in 0..<6 { #expect(limiter.take(for: "10.0.0.1", now: start) == nil) }
        #expect(limiter.take(for: "10.0.0.1", now: start) == 10)
        #expect(limiter.take(for: "10.0.0.2", now: start) == nil, "another address has its own bucket")
        #expect(limiter.take(for: "10.0.0.1", now: start + .seconds(10)) == nil, "one token back after 10 s")
        #expect(limiter.take(for: "10.0.0.1", now: start + .seconds(10)) != nil)
    }

    /// Upstreams point where nothing listens: a 401 rather than a 502 shows the edge refused before proxying.
    @Test func aProtectedRouteNeedsAValidTokenBeforeAnythingIsProxied() async throws {
        let issuer = await TokenIssuer(signingKey: EdgeRouterTests.signingKey)
        let (token, _) = try await issuer.issue(subject: "acct_1", kind: .patient, roles: [.patient])
        let (expired, _) = try await issuer.issue(
            subject: "acct_1", kind: .patient, roles: [.patient], now: Date().addingTimeInterval(-3600))
        let (foreign, _) = try await TokenIssuer(signingKey: try SigningKey.generate(keyID: "other")).issue(
            subject: "acct_1", kind: .patient, roles: [.patient])
        try await EdgeRouterTests.withEdge { client in
            let cases: [(HTTPFields, HTTPResponse.Status, String?)] = [
                (HTTPFields(), .unauthorized, "authentication-required"),
                ([.authorization: "Bearer \(expired)"], .unauthorized, "token-expired"),
                ([.authorization: "Bearer \(foreign)"], .unauthorized, "invalid-token"),
                ([.authorization: "Bearer \(token)"], .badGateway, "service-unavailable"),
            ]
            for (headers, status, code) in cases {
                try await client.execute(uri: "/api/reports/reports", method: .get, headers: headers) {
                    response throws in
                    #expect(response.status == status)
                    #expect(try EdgeRouterTests.problem(response).code == code)
                }
            }
            // Open routes go straight through (to the missing upstream).
            try await client.execute(uri: "/api/registration/departments", method: .get) { response throws in
                #expect(response.status == .badGateway)
            }
        }
    }

    @Test func theSignInEndpointsAreLimitedPerAddress() async throws {
        try await EdgeRouterTests.withEdge { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<11 {
                let response = try await client.execute(
                    uri: "/api/registration/auth/sms-codes", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"phone":"13812345678"}"#))
                statuses.append(response.status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == .badGateway }, "\(statuses)")
            #expect(statuses.last == .tooManyRequests)
        }
    }
}
