import Foundation
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

/// The edge's own routes, with every upstream pointing at a port where nothing listens.
@Suite struct EdgeRouterTests {
    static let publicDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Services/edge/Public")

    static func withEdge(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let port = try unusedLoopbackPort()
        var upstreams: [ServiceName: String] = [:]
        for service in ServiceName.allCases { upstreams[service] = "http://127.0.0.1:\(port)" }
        let configuration = EdgeConfiguration(
            server: ServerSettings(port: 0),
            upstreams: upstreams,
            publicDirectory: publicDirectory,
            bodyLimit: 1024
        )
        let client = CalloutClient()
        defer { client.shutdown() }
        let app = ServiceApplication.make(
            name: "edge",
            router: buildRouter(configuration: configuration, client: client, verifier: await Self.verifier()),
            settings: configuration.server,
            logger: Logger(label: "edge")
        )
        try await app.test(.router, body)
    }

    static func problem(_ response: TestResponse) throws -> ProblemDocument {
        try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
    }

    @Test func serviceThatIsDownIsA502NamingIt() async throws {
        try await Self.withEdge { client in
            try await client.execute(uri: "/api/consult/threads", method: .get, headers: await Self.signedIn()) {
                response throws in
                #expect(response.status == .badGateway)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try Self.problem(response)
                #expect(problem.code == "service-unavailable")
                #expect(problem.extensions["service"] == "consult")
                #expect(problem.detail.contains("consult"))
            }
        }
    }

    @Test func healthIsDegradedWhenServicesAreDown() async throws {
        try await Self.withEdge { client in
            try await client.execute(uri: "/health", method: .get) { response throws in
                #expect(response.status == .serviceUnavailable)
                let health = try JSONDecoder().decode(PlatformHealth.self, from: Data(buffer: response.body))
                #expect(health.status == "degraded")
                #expect(Set(health.services.keys) == Set(ServiceName.allCases.map(\.rawValue)))
                #expect(health.services.values.allSatisfy { $0.status == "unavailable" })
                // Internal addresses are not shown to the public.
                #expect(!String(buffer: response.body).contains("127.0.0.1"))
            }
        }
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let headers = try await Self.signedIn()
        try await Self.withEdge { client in
            let body = ByteBuffer(repeating: UInt8(ascii: "a"), count: 2048)
            try await client.execute(
                uri: "/api/registration/departments/x", method: .put, headers: headers, body: body
            ) {
                response throws in
                #expect(response.status == .contentTooLarge)
                #expect(try Self.problem(response).detail.contains("1024"))
            }
        }
    }

    @Test func metricsAreNotServedToPeersOffThisHost() async throws {
        // The router test client has no loopback peer address, as a remote client would not.
        try await Self.withEdge { client in
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .notFound) }
        }
    }

    @Test func staticFilesHaveTypesAndCaching() async throws {
        try await Self.withEdge { client in
            let etag = try await client.execute(uri: "/", method: .get) { response throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(response.headers[.cacheControl] == "no-cache")
                return response.headers[.eTag]
            }
            #expect(etag != nil)
            try await client.execute(uri: "/", method: .get, headers: [.ifNoneMatch: etag ?? ""]) {
                #expect($0.status == .notModified)
            }
            try await client.execute(uri: "/style.css", method: .get) { response throws in
                #expect(response.headers[.contentType]?.hasPrefix("text/css") == true)
                #expect(response.headers[.cacheControl]?.contains("max-age=3600") == true)
            }
            try await client.execute(uri: "/missing.css", method: .get) { response throws in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
        }
    }

    static let signingKey = try! SigningKey.generate(keyID: "edge-test")

    /// Headers of a signed-in patient, for the routes that need one.
    static func signedIn() async throws -> HTTPFields {
        let (token, _) = try await TokenIssuer(signingKey: signingKey).issue(
            subject: "acct_1", kind: .patient, roles: [.patient])
        return [.authorization: "Bearer \(token)"]
    }

    static func verifier() async -> TokenVerifier {
        await TokenVerifier(publicKeys: [signingKey.verificationKey])
    }

    @Test func everyRouteIsInTheOpenAPIDocument() async throws {
        let configuration = EdgeConfiguration(
            server: ServerSettings(port: 0),
            upstreams: [:],
            publicDirectory: Self.publicDirectory
        )
        let client = CalloutClient()
        defer { client.shutdown() }
        let router = buildRouter(configuration: configuration, client: client, verifier: await Self.verifier())
        #expect(try OpenAPICoverage.undocumentedRoutes(of: router, in: EdgeAPI.openAPIDocument) == [])
    }
}
