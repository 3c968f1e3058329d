import ConsultService
import FollowupService
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RegistrationService
import ReportsService
import ScreeningService
import Testing
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage
import YunzhenTesting

/// What every domain service shares: its API document describes each route, and it is ready once migrated.
@Suite struct ServiceRoutesTests {
    struct Case: Sendable, CustomStringConvertible {
        let description: String
        let document: [UInt8]
        let router: @Sendable () async throws -> Router<ServiceRequestContext>
    }

    static let cases: [Case] = [
        Case(description: "registration", document: RegistrationAPI.openAPIDocument) {
            RegistrationService.buildRouter(
                database: try .inMemory(migrator: RegistrationMigrations.migrator),
                identity: await TestIdentity.registration())
        },
        Case(description: "reports", document: ReportsAPI.openAPIDocument) {
            ReportsService.buildRouter(
                database: try .inMemory(migrator: ReportsMigrations.migrator), verifier: await TestIdentity.verifier())
        },
        Case(description: "consult", document: ConsultAPI.openAPIDocument) {
            ConsultService.buildRouter(
                database: try .inMemory(migrator: ConsultMigrations.migrator), verifier: await TestIdentity.verifier())
        },
        Case(description: "followup", document: FollowupAPI.openAPIDocument) {
            FollowupService.buildRouter(
                database: try .inMemory(migrator: FollowupMigrations.migrator), verifier: await TestIdentity.verifier())
        },
        Case(description: "screening", document: ScreeningAPI.openAPIDocument) {
            ScreeningService.buildRouter(
                database: try .inMemory(migrator: ScreeningMigrations.migrator), verifier: await TestIdentity.verifier()
            )
        },
    ]

    @Test(arguments: cases)
    func everyRouteIsInTheOpenAPIDocument(service: Case) async throws {
        let router = try await service.router()
        #expect(try OpenAPICoverage.undocumentedRoutes(of: router, in: service.document) == [])
        #expect(String(decoding: service.document, as: UTF8.self).hasPrefix("openapi: 3.1"))
    }

    @Test(arguments: cases)
    func readyOnceTheDatabaseIsMigrated(service: Case) async throws {
        let app = ServiceApplication.make(
            name: service.description, router: try await service.router(), settings: ServerSettings(port: 0),
            logger: Logger(label: "t"))
        try await app.test(.router) { client in
            try await client.execute(uri: "/health/ready", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/openapi.yaml", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func coverageCheckNoticesAnUndocumentedRoute() async throws {
        let router = try await Self.cases[1].router()
        router.get("/secret-route") { _, _ in "x" }
        #expect(
            try OpenAPICoverage.undocumentedRoutes(of: router, in: ReportsAPI.openAPIDocument) == ["GET /secret-route"])
    }
}
