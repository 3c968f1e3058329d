import Foundation
import Hummingbird
import YunzhenCallout
import YunzhenContracts
import YunzhenServiceKit

/// `GET /health`: asks every service for its readiness at once and reports them together, 200 when all are
/// ready and 503 otherwise, so a load balancer or an operator sees the platform's state in one request.
struct HealthAggregator {
    let client: CalloutClient
    let upstreams: [ServiceName: String]
    let timeout: Duration

    func add(to router: Router<ServiceRequestContext>) {
        router.get("/health") { _, context in
            let report = await check(requestID: context.requestID)
            let body = try JSONEncoder().encode(report)
            return Response(
                status: report.status == "ready" ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
    }

    func check(requestID: String) async -> PlatformHealth {
        let results = await withTaskGroup(of: (ServiceName, ServiceHealth).self) { group in
            for (service, base) in upstreams {
                group.addTask {
                    let started = ContinuousClock.now
                    let request = CalloutRequest(url: base + "/health/ready", connectTimeout: timeout, timeout: timeout)
                    let outcome: ServiceHealth
                    do {
                        let response = try await client.execute(request, requestID: requestID)
                        let milliseconds = (ContinuousClock.now - started) / .milliseconds(1)
                        outcome = ServiceHealth(
                            status: response.status == 200 ? "ready" : "unavailable",
                            latencyMs: milliseconds,
                            detail: response.status == 200 ? nil : "readiness answered \(response.status)"
                        )
                    } catch {
                        // The error names internal addresses; the public gets the state only.
                        outcome = ServiceHealth(status: "unavailable", latencyMs: nil, detail: "not reachable")
                    }
                    return (service, outcome)
                }
            }
            var results: [String: ServiceHealth] = [:]
            for await (service, health) in group { results[service.rawValue] = health }
            return results
        }
        let allReady = results.count == upstreams.count && results.values.allSatisfy { $0.status == "ready" }
        return PlatformHealth(status: allReady ? "ready" : "degraded", services: results)
    }
}

/// The body of `GET /health`.
struct PlatformHealth: Codable, Equatable {
    var status: String
    var services: [String: ServiceHealth]
}

struct ServiceHealth: Codable, Equatable {
    var status: String
    var latencyMs: Double?
    var detail: String?
}
