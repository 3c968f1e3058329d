import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import YunzhenCallout
import YunzhenServiceKit
import YunzhenTesting

/// The libcurl client against a real HTTP server on a loopback socket.
@Suite struct CalloutClientTests {
    struct Echo: ResponseCodable {
        var method: String
        var body: String
        var requestID: String?
        var traceparent: String?
        var remotePort: Int?
    }

    static func makeServer() -> some ApplicationProtocol {
        let router = ServiceApplication.makeRouter()
        for method in [HTTPRequest.Method.get, .post, .put, .delete] {
            router.on("/echo", method: method) { request, context in
                let body = try await request.body.collect(upTo: 1 << 20)
                return Echo(
                    method: request.method.rawValue,
                    body: String(buffer: body),
                    requestID: request.headers[.requestID],
                    traceparent: request.headers[.traceparent],
                    remotePort: context.remoteAddress?.port
                )
            }
        }
        // Far slower than any bound below, so that a loaded machine cannot pass a wait for the answer as a timeout.
        router.get("/slow") { _, _ in
            try await Task.sleep(for: .seconds(6))
            return "late"
        }
        router.get("/big") { _, _ in String(repeating: "x", count: 100_000) }
        return ServiceApplication.make(
            name: "server", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "server"))
    }

    static func withServer(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        try await makeServer().test(.live) { client in
            try await body("http://127.0.0.1:\(client.port!)")
        }
    }

    @Test func postsABodyAndReadsTheAnswer() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        try await Self.withServer { base in
            let response = try await client.execute(
                CalloutRequest(
                    method: "POST", url: base + "/echo", headers: [(name: "Content-Type", value: "text/plain")],
                    body: Array("患者 data".utf8)
                )
            )
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("application/json") == true)
            let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
            #expect(echo.method == "POST")
            #expect(echo.body == "患者 data")
        }
    }

    @Test func propagatesRequestIDAndAChildSpanOfTheTrace() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        let trace = TraceContext.newTrace()
        try await Self.withServer { base in
            let response = try await client.execute(
                CalloutRequest(url: base + "/echo"), requestID: "req-42", trace: trace)
            let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
            #expect(echo.requestID == "req-42")
            let parts = echo.traceparent?.split(separator: "-").map(String.init) ?? []
            #expect(parts.count == 4)
            #expect(parts.first == "00")
            #expect(parts.dropFirst().first == trace.traceID)
            #expect(parts.dropFirst(2).first != trace.spanID)
        }
    }

    @Test func reusesTheConnectionForTheNextRequest() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        try await Self.withServer { base in
            let first = try await client.execute(CalloutRequest(url: base + "/echo"))
            let second = try await client.execute(CalloutRequest(url: base + "/echo"))
            #expect(!first.reusedConnection)
            #expect(second.reusedConnection)
            let firstPort = try JSONDecoder().decode(Echo.self, from: Data(first.body)).remotePort
            let secondPort = try JSONDecoder().decode(Echo.self, from: Data(second.body)).remotePort
            #expect(firstPort != nil && firstPort == secondPort)
        }
    }

    @Test func manyConcurrentRequestsAllComplete() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        try await Self.withServer { base in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await client.execute(
                            CalloutRequest(method: "PUT", url: base + "/echo", body: Array("\(index)".utf8))
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 200 && statuses.allSatisfy { $0 == 200 })
        }
    }

    @Test func totalTimeoutEndsASlowExchange() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        try await Self.withServer { base in
            let started = ContinuousClock.now
            await #expect(throws: CalloutError.timedOut(url: base + "/slow", after: .milliseconds(300))) {
                try await client.execute(CalloutRequest(url: base + "/slow", timeout: .milliseconds(300)))
            }
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func nothingListeningIsCouldNotConnect() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        let port = try unusedLoopbackPort()
        let error = await #expect(throws: CalloutError.self) {
            try await client.execute(CalloutRequest(url: "http://127.0.0.1:\(port)/x"))
        }
        guard case .couldNotConnect = error else {
            Issue.record("expected couldNotConnect, got \(String(describing: error))")
            return
        }
    }

    @Test func connectTimeoutWhenTheListenerNeverAccepts() async throws {
        let client = CalloutClient(
            configuration: CalloutConfiguration(connectTimeout: .milliseconds(300), timeout: .seconds(5)))
        defer { client.shutdown() }
        let listener = try SaturatedListener()
        defer { listener.close() }
        // The error names the timer that fired: the connect timeout, not the request's 5 seconds. (No wall-clock
        // bound: on a loaded machine it measures the machine.)
        await #expect(
            throws: CalloutError.connectTimedOut(url: "http://127.0.0.1:\(listener.port)/", after: .milliseconds(300))
        ) {
            try await client.execute(CalloutRequest(url: "http://127.0.0.1:\(listener.port)/"))
        }
    }

    @Test func oversizedResponseIsRefused() async throws {
        let client = CalloutClient(configuration: CalloutConfiguration(maximumResponseBytes: 10_000))
        defer { client.shutdown() }
        try await Self.withServer { base in
            await #expect(throws: CalloutError.responseTooLarge(url: base + "/big", limit: 10_000)) {
                try await client.execute(CalloutRequest(url: base + "/big"))
            }
        }
    }

    @Test func cancellingTheCallerAbandonsTheExchange() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        try await Self.withServer { base in
            let task = Task { try await client.execute(CalloutRequest(url: base + "/slow")) }
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            task.cancel()
            await #expect(throws: CalloutError.cancelled) { try await task.value }
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func invalidRequestsAreRefusedBeforeAnyIO() async throws {
        let client = CalloutClient()
        defer { client.shutdown() }
        await #expect(throws: CalloutError.self) { try await client.execute(CalloutRequest(url: "file:///etc/passwd")) }
        await #expect(throws: CalloutError.self) {
            try await client.execute(
                CalloutRequest(url: "http://127.0.0.1:1/", headers: [(name: "X", value: "a\r\nInjected: 1")]))
        }
    }

    @Test func afterShutdownRequestsFailClearly() async throws {
        let client = CalloutClient()
        client.shutdown()
        await #expect(throws: CalloutError.shutDown) {
            try await client.execute(CalloutRequest(url: "http://127.0.0.1:1/"))
        }
    }
}
