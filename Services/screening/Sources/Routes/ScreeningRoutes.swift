import Foundation
import GRDB
import Hummingbird
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// The questionnaire (admins publish versions; anyone signed in reads the current one) and the patients'
/// screenings (listed, answered, read through the access rule).
struct ScreeningRoutes {
    let screenings: Screenings
    let passes: EntryPasses
    let verifier: TokenVerifier
    let clock: @Sendable () -> Date

    var access: PatientAccess { PatientAccess(database: screenings.database, relationships: ScreeningRelationships()) }

    struct ScreeningList: ResponseEncodable { var screenings: [Screenings.ScreeningView] }

    func add(to router: Router<ServiceRequestContext>) {
        addGate(to: router)
        router.group("admin/questionnaires").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .post { request, context in
                let admin = try context.requireRole(.admin)
                let questionnaire = try await request.decodeJSON(as: Questionnaire.self, context: context)
                let published = try await screenings.publish(questionnaire, audit: context.audit(admin), now: clock())
                context.logger.notice("questionnaire published", metadata: ["version": "\(published.version)"])
                return EditedResponse(status: .created, response: published)
            }
        router.group("admin/statistics").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get("screenings") { request, context -> ScreeningStatistics.Report in
                _ = try context.requireRole(.admin)
                let query = request.uri.queryParameters
                let range = try StatisticsRange(
                    from: query["from"].map(String.init), to: query["to"].map(String.init), now: clock())
                return try await ScreeningStatistics(database: screenings.database).report(range)
            }
        router.group("questionnaires").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get("current") { _, context -> Screenings.Published in
                _ = try context.requirePrincipal()
                return try await screenings.current()
            }
        router.group("me/screenings").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get { _, context -> ScreeningList in
                let principal = try context.requireRole(.patient)
                let screenings = self.screenings
                return try await screenings.database.write { db in
                    let list = try screenings.list(account: principal.subject, in: db)
                    try context.audit(principal).recordReads(
                        "screening", of: list, id: \.id, patient: \.patientId, in: db)
                    return ScreeningList(screenings: list)
                }
            }
        let group = router.group("screenings").add(middleware: AuthenticationMiddleware(verifier: verifier))
        group.get("{id}") { request, context -> Screenings.ScreeningView in
            try await onScreening(request, context, .read) { id, db, _ in try Screenings.view(id, in: db)! }
        }
        group.get("{id}/pass") { request, context -> EntryPasses.PassView in
            try await onScreening(request, context, .read) { id, db, now in
                try EntryPasses.pass(ofScreening: id, now: now, in: db)
            }
        }
        group.post("{id}/answers") { request, context -> Screenings.ScreeningView in
            _ = try context.requireRole(.patient)
            let submission = try await request.decodeJSON(as: Screenings.Submission.self, context: context)
            let screenings = self.screenings
            let view = try await onScreening(request, context, .update) { id, db, now in
                try screenings.submit(id, submission, now: now, in: db)
            }
            context.logger.info(
                "screening answered",
                metadata: ["screening": "\(view.id)", "outcome": "\(view.result?.outcome ?? "")"])
            return view
        }
    }

    /// The door: staff with the gate role check passes; admins revoke them.
    private func addGate(to router: Router<ServiceRequestContext>) {
        router.group("gate/checks").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .post { request, context in
                let keeper = try context.requireRole(.gate)
                let presented = try await request.decodeJSON(as: EntryPasses.GateRequest.self, context: context)
                let entry = try await passes.check(presented, audit: context.audit(keeper), now: clock())
                context.logger.info("entry admitted", metadata: ["pass": "\(entry.passId)"])
                return EditedResponse(status: .created, response: entry)
            }
        router.group("admin/passes").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .post("{id}/revocation") { request, context -> EntryPasses.PassView in
                let admin = try context.requireRole(.admin)
                let revocation = try await request.decodeJSON(as: Revocation.self, context: context)
                return try await passes.revoke(
                    try context.parameters.require("id"), reason: revocation.reason, audit: context.audit(admin),
                    now: clock())
            }
    }

    struct Revocation: Decodable { var reason: String }

    /// Runs `work` on screening `{id}` for a caller the access rule lets in to its patient; anyone else, and an
    /// unknown id, gets the same 404.
    private func onScreening<Value: Sendable>(
        _ request: Request, _ context: ServiceRequestContext, _ action: AuditAction,
        _ work: @escaping @Sendable (String, Database, Date) throws -> Value
    ) async throws -> Value {
        let id = try context.parameters.require("id")
        let now = clock()
        let patientOf: @Sendable (Database) throws -> String? = { db in
            try String.fetchOne(db, sql: "SELECT patient_id FROM screening WHERE id = ?", arguments: [id])
        }
        return try await access.withResource(
            "screening", id: id, action, request: request, context: context,
            refusal: Problem.notFound("There is no screening `\(id)`."), patientOf: patientOf
        ) { db, _ in try work(id, db, now) }
    }
}
