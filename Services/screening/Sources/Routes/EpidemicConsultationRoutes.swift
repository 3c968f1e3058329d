import Foundation
import GRDB
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit

/// Free epidemic questions: patients open and list theirs; doctors see the waiting ones and take one.
struct EpidemicConsultationRoutes {
    let database: any DatabaseWriter
    let access: PatientAccess
    let verifier: TokenVerifier
    let clock: @Sendable () -> Date

    typealias Consultations = EpidemicConsultations

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("epidemic-consultations").add(middleware: AuthenticationMiddleware(verifier: verifier))
        group.post { request, context in
            let principal = try context.requireRole(.patient)
            let question = try await request.decodeJSON(as: Consultations.Question.self, context: context)
            let now = clock()
            let view = try await access.withPatient(
                question.patientId, .create, "epidemic-consultation", id: nil, request: request, context: context
            ) { db, _ in try Consultations.open(question, account: principal.subject, now: now, in: db) }
            context.logger.info("epidemic question opened", metadata: ["consultation": "\(view.id)"])
            return EditedResponse(status: .created, response: view)
        }
        // The doctors on duty: what waits for an answer, oldest first. Each question shown is a read of that
        // patient's data, so each is audited.
        group.get { _, context -> Consultations.ConsultationList in
            let doctor = try context.requireRole(.doctor)
            return try await database.write { db in
                let waiting = try Consultations.waiting(in: db)
                try context.audit(doctor).recordReads(
                    "epidemic-consultation", of: waiting, id: \.id, patient: \.patientId, in: db)
                return Consultations.ConsultationList(consultations: waiting)
            }
        }
        group.get("{id}") { request, context -> Consultations.ConsultationView in
            try await readConsultation(request, context) { id, db in try Consultations.view(id, in: db)! }
        }
        // Taking a question is what makes it the doctor's; any doctor may take a waiting one.
        group.post("{id}/take") { _, context -> Consultations.ConsultationView in
            let doctor = try context.requireRole(.doctor)
            let id = try context.parameters.require("id")
            let now = clock()
            return try await database.write { db in
                let view = try Consultations.take(id, doctor: doctor.subject, now: now, in: db)
                try context.audit(doctor).record(
                    .update, "epidemic-consultation", id: id, patient: view.patientId, in: db)
                return view
            }
        }
        router.group("me/epidemic-consultations").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get { _, context -> Consultations.ConsultationList in
                let principal = try context.requireRole(.patient)
                return try await database.write { db in
                    let list = try Consultations.list(account: principal.subject, in: db)
                    try context.audit(principal).recordReads(
                        "epidemic-consultation", of: list, id: \.id, patient: \.patientId, in: db)
                    return Consultations.ConsultationList(consultations: list)
                }
            }
    }

    /// Runs `work` on consultation `{id}` for a caller the access rule lets in; anyone else gets the 404 an
    /// unknown id gets.
    private func readConsultation<Value: Sendable>(
        _ request: Request, _ context: ServiceRequestContext,
        _ work: @escaping @Sendable (String, Database) throws -> Value
    ) async throws -> Value {
        let id = try context.parameters.require("id")
        let patientOf: @Sendable (Database) throws -> String? = { db in
            try String.fetchOne(db, sql: "SELECT patient_id FROM epidemic_consultation WHERE id = ?", arguments: [id])
        }
        return try await access.withResource(
            "epidemic-consultation", id: id, .read, request: request, context: context,
            refusal: Problem.notFound("There is no epidemic consultation `\(id)`."), patientOf: patientOf
        ) { db, _ in try work(id, db) }
    }
}
