import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenServiceKit
import YunzhenTesting

/// The behaviour every process gets from the kit: request ids, problem answers, operations routes.
@Suite struct ServiceKitHTTPTests {
    struct Greeting: ResponseCodable {
        var name: String
        var count: Int
    }
    struct InternalFailure: Error { let secret = "database password is hunter2" }

    static func makeApp(logs: CapturedLogs, ready: Bool = true) -> some ApplicationProtocol {
        let router = ServiceApplication.makeRouter()
        OperationsRoutes.add(to: router, openAPIDocument: Array("openapi: 3.1.0\n".utf8)) { ready }
        router.post("/greetings") { request, context in
            try await request.decodeJSON(as: Greeting.self, context: context)
        }
        router.get("/explode") { _, _ -> String in throw InternalFailure() }
        router.get("/trace") { _, context in context.trace.traceID }
        return ServiceApplication.make(
            name: "test",
            router: router,
            settings: ServerSettings(port: 0),
            logger: logs.logger()
        )
    }

    static func problem(_ response: TestResponse) throws -> ProblemDocument {
        try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
    }

    @Test func unknownRouteIsAProblemWithTheRequestID() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            try await client.execute(uri: "/nowhere", method: .get, headers: [.requestID: "abc-123"]) {
                response throws in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.headers[.requestID] == "abc-123")
                let problem = try Self.problem(response)
                #expect(problem.status == 404)
                #expect(problem.code == "not-found")
                #expect(problem.requestId == "abc-123")
                #expect(problem.detail.contains("/nowhere"))
            }
        }
    }

    @Test func malformedBodySaysWhatIsWrong() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            try await client.execute(uri: "/greetings", method: .post, body: ByteBuffer(string: "{\"name\": \"x\"")) {
                response throws in
                #expect(response.status == .badRequest)
                #expect(try Self.problem(response).detail == "The body is not valid JSON.")
            }
            try await client.execute(uri: "/greetings", method: .post, body: ByteBuffer(string: #"{"name": "x"}"#)) {
                response throws in
                #expect(response.status == .badRequest)
                #expect(try Self.problem(response).detail == "The field `count` is required.")
            }
            try await client.execute(
                uri: "/greetings", method: .post, body: ByteBuffer(string: #"{"name": 1, "count": 2}"#)
            ) {
                response throws in
                #expect(try Self.problem(response).detail == "`name` must be a string.")
            }
        }
    }

    @Test func unexpectedErrorIsLoggedOnceAndHidesInternals() async throws {
        let logs = CapturedLogs()
        try await Self.makeApp(logs: logs).test(.router) { client in
            try await client.execute(uri: "/explode", method: .get, headers: [.requestID: "boom-1"]) {
                response throws in
                #expect(response.status == .internalServerError)
                let problem = try Self.problem(response)
                #expect(problem.code == "internal-error")
                #expect(!String(buffer: response.body).contains("hunter2"))
            }
        }
        let errors = logs.entries.filter { $0.level == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.metadata["request_id"] == "boom-1")
    }

    @Test func missingOrMalformedRequestIDIsReplacedWithAGeneratedOne() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            let generated = try await client.execute(uri: "/health/live", method: .get) { $0.headers[.requestID] }
            #expect(generated?.count == 32)
            let replaced = try await client.execute(
                uri: "/health/live", method: .get, headers: [.requestID: "has spaces; and more"]
            ) {
                $0.headers[.requestID]
            }
            #expect(replaced != nil && replaced != "has spaces; and more")
            let tooLong = String(repeating: "a", count: 129)
            let replacedLong = try await client.execute(
                uri: "/health/live", method: .get, headers: [.requestID: tooLong]
            ) {
                $0.headers[.requestID]
            }
            #expect(replacedLong != tooLong)
        }
    }

    @Test func incomingTraceIsContinued() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let traceID = try await client.execute(uri: "/trace", method: .get, headers: [.traceparent: traceparent]) {
                String(buffer: $0.body)
            }
            #expect(traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
            let fresh = try await client.execute(uri: "/trace", method: .get, headers: [.traceparent: "00-000-bad"]) {
                String(buffer: $0.body)
            }
            #expect(fresh.count == 32 && fresh != "4bf92f3577b34da6a3ce929d0e0e4736")
        }
    }

    @Test func readinessFollowsTheCheck() async throws {
        try await Self.makeApp(logs: CapturedLogs(), ready: false).test(.router) { client in
            try await client.execute(uri: "/health/ready", method: .get) { response throws in
                #expect(response.status == .serviceUnavailable)
                #expect(try Self.problem(response).code == "not-ready")
            }
            try await client.execute(uri: "/health/live", method: .get) { #expect($0.status == .ok) }
        }
        try await Self.makeApp(logs: CapturedLogs(), ready: true).test(.router) { client in
            try await client.execute(uri: "/health/ready", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func metricsCountRequestsPerRouteForAScraperOnThisHost() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.live) { client in
            for _ in 0..<3 { try await client.execute(uri: "/health/live", method: .get) { _ in } }
            let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(text.contains(#"http_route="/health/live""#))
            #expect(text.contains("hb_requests"))
            #expect(text.contains("http_server_request_duration_bucket"))
            #expect(text.contains("process_resident_memory_bytes"))
            #expect(text.contains("process_open_fds"))
        }
    }

    @Test func metricsAreHiddenFromPeersOffThisHost() async throws {
        // The router test client has no peer address, like a client on another host.
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .notFound) }
        }
    }

    @Test func openAPIDocumentIsServedAsYAML() async throws {
        try await Self.makeApp(logs: CapturedLogs()).test(.router) { client in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response throws in
                #expect(response.headers[.contentType]?.hasPrefix("application/yaml") == true)
                #expect(String(buffer: response.body).hasPrefix("openapi: 3.1"))
            }
        }
    }
}

@Suite struct ReadinessWarningTests {
    @Test func warningsShowInReadinessUntilCleared() async throws {
        let warnings = HealthWarnings()
        let router = ServiceApplication.makeRouter()
        OperationsRoutes.add(to: router, openAPIDocument: [], warnings: warnings) { true }
        let app = ServiceApplication.make(
            name: "t", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        try await app.test(.router) { client in
            warnings.set("queue-retention", "queue registration: retention cut off consult")
            let warned = try await client.execute(uri: "/health/ready", method: .get) { response throws in
                #expect(response.status == .ok)
                return try JSONDecoder().decode(HealthStatus.self, from: Data(buffer: response.body))
            }
            #expect(
                warned == HealthStatus(status: "ready", warnings: ["queue registration: retention cut off consult"]))
            warnings.set("queue-retention", nil)
            let clean = try await client.execute(uri: "/health/ready", method: .get) { response throws in
                try JSONDecoder().decode(HealthStatus.self, from: Data(buffer: response.body))
            }
            #expect(clean == HealthStatus(status: "ready"))
        }
    }
}
