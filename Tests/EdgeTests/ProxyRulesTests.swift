import Testing
import YunzhenContracts

@testable import EdgeService

@Suite struct ProxyRulesTests {
    @Test func mapsTheServiceAndKeepsPathAndQueryAsSent() throws {
        let target = try ProxyRules.target(forRawPath: "/api/registration/departments/hematology?lang=en&q=%20x")
        #expect(target == .init(service: .registration, pathAndQuery: "/departments/hematology?lang=en&q=%20x"))
        #expect(try ProxyRules.target(forRawPath: "/api/consult/threads/").pathAndQuery == "/threads/")
    }

    @Test func unknownServiceIsNamed() {
        #expect(throws: ProxyRules.Rejection.unknownService("billing")) {
            try ProxyRules.target(forRawPath: "/api/billing/x")
        }
    }

    @Test(arguments: [
        "/api/registration/../metrics",
        "/api/registration/%2e%2e/metrics",
        "/api/registration/%2E%2E/metrics",
        "/api/registration/./departments",
        "/api/registration/a%2fb",
        "/api/registration/a%5cb",
        "/api/registration//departments",
        "/api/registration/x%00y",
        "/api/registration/%zz",
    ])
    func pathsThatLeaveTheServiceSpaceAreRefused(path: String) {
        #expect(throws: ProxyRules.Rejection.unsafePath) { try ProxyRules.target(forRawPath: path) }
    }

    @Test(arguments: [
        "/api/reports/metrics", "/api/reports/health/ready", "/api/reports/Health/live", "/api/reports/internal/replay",
        "/api/reports/%6detrics",
    ])
    func operationsRoutesAreNeverForwarded(path: String) {
        #expect(throws: ProxyRules.Rejection.internalRoute) { try ProxyRules.target(forRawPath: path) }
    }

    @Test func hopByHopAndConnectionListedHeadersStopAtTheEdge() {
        let headers = ProxyRules.upstreamHeaders(
            from: [
                (name: "Connection", value: "keep-alive, X-Secret-Hop"),
                (name: "X-Secret-Hop", value: "1"),
                (name: "Keep-Alive", value: "timeout=5"),
                (name: "TE", value: "trailers"),
                (name: "Upgrade", value: "h2c"),
                (name: "Authorization", value: "Bearer t"),
                (name: "X-Forwarded-For", value: "6.6.6.6"),
                (name: "X-Request-ID", value: "spoofed"),
                (name: "Accept", value: "application/json"),
            ],
            clientAddress: "10.0.0.7",
            scheme: "http",
            host: "hospital.example"
        )
        let names = headers.map { $0.name.lowercased() }
        #expect(!names.contains("connection") && !names.contains("x-secret-hop") && !names.contains("keep-alive"))
        #expect(!names.contains("te") && !names.contains("upgrade") && !names.contains("x-request-id"))
        #expect(headers.contains { $0 == (name: "Authorization", value: "Bearer t") })
        #expect(headers.contains { $0 == (name: "Accept", value: "application/json") })
        // The client's claim about earlier hops is replaced by what the edge saw.
        #expect(headers.filter { $0.name == "X-Forwarded-For" }.map(\.value) == ["10.0.0.7"])
        #expect(headers.contains { $0 == (name: "X-Forwarded-Proto", value: "http") })
        #expect(headers.contains { $0 == (name: "X-Forwarded-Host", value: "hospital.example") })
    }

    @Test func responseFramingIsTheEdgesOwn() {
        let headers = ProxyRules.downstreamHeaders(from: [
            (name: "Content-Type", value: "application/json"),
            (name: "Content-Length", value: "12"),
            (name: "Transfer-Encoding", value: "chunked"),
            (name: "Connection", value: "close, X-Upstream-Hop"),
            (name: "X-Upstream-Hop", value: "1"),
            (name: "ETag", value: "\"v1\""),
        ])
        #expect(headers.map(\.name) == ["Content-Type", "ETag"])
    }
}
