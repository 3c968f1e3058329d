import Foundation
import GRDB
import Hummingbird
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// `/me/patients`: the patients an account manages, itself and the family members it books for (就诊人). Only
/// the account's holder reaches them: another account's patient answers 404, as if it did not exist. Lists show
/// identity numbers and phones masked; one patient's page shows them whole. Every read and write is audited.
struct PatientRoutes {
    let database: any DatabaseWriter
    let verifier: TokenVerifier
    /// A hospital app's usual limit: enough for a family, too few to run an agency booking for strangers.
    static let maximumPerAccount = 8

    struct PatientView: ResponseEncodable, Equatable {
        var id: String
        var relationship: String
        var name: String
        var sex: String
        var birthDate: String
        var province: String
        var residentId: String?
        var phone: String?
    }

    struct PatientList: ResponseEncodable {
        var patients: [PatientView]
    }

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("me/patients").add(middleware: AuthenticationMiddleware(verifier: verifier))
        group.get { request, context -> PatientList in
            let principal = try context.requireRole(.patient)
            return try await database.write { db in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM patient WHERE account_id = ? ORDER BY created_at, id",
                    arguments: [principal.subject])
                for row in rows {
                    try audit(principal, .read, patient: row["id"], context: context, request: request, in: db)
                }
                return PatientList(patients: rows.map { Self.view($0, whole: false) })
            }
        }
        group.get("{id}") { request, context -> PatientView in
            let principal = try context.requireRole(.patient)
            let id = try context.parameters.require("id")
            return try await database.write { db in
                let row = try ownPatient(id, of: principal, in: db)
                try audit(principal, .read, patient: id, context: context, request: request, in: db)
                return Self.view(row, whole: true)
            }
        }
        group.post { request, context in
            let principal = try context.requireRole(.patient)
            let profile = try Self.validate(try await request.decodeJSON(as: PatientInput.self, context: context))
            let view = try await database.write { db -> PatientView in
                let count =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM patient WHERE account_id = ?", arguments: [principal.subject])
                    ?? 0
                guard count < Self.maximumPerAccount else {
                    throw Problem(
                        .conflict, code: "too-many-patients",
                        detail: "An account manages at most \(Self.maximumPerAccount) patients.")
                }
                try checkConflicts(profile, account: principal.subject, except: nil, in: db)
                let id = "pat_" + Secrets.randomHex(bytes: 10)
                try db.execute(
                    sql: """
                        INSERT INTO patient (id, account_id, relationship, name, sex, birth_date, resident_id,
                            province, phone, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, principal.subject, profile.relationship.rawValue, profile.name, profile.sex.rawValue,
                        profile.birthDate, profile.residentID?.value, profile.province, profile.phone?.digits, Date(),
                        Date(),
                    ])
                try Outbox.publish(
                    PatientRegistered(
                        patientID: id, accountID: principal.subject, relationship: profile.relationship.rawValue,
                        province: profile.province, birthYear: Int(profile.birthDate.prefix(4))!,
                        sex: profile.sex.rawValue),
                    source: "/yunzhen/registration", in: db)
                try audit(principal, .create, patient: id, context: context, request: request, in: db)
                return Self.view(try ownPatient(id, of: principal, in: db), whole: true)
            }
            context.logger.info(
                "patient added", metadata: ["patient": "\(view.id)", "account": "\(principal.subject)"])
            return EditedResponse(status: .created, response: view)
        }
        group.put("{id}") { request, context -> PatientView in
            let principal = try context.requireRole(.patient)
            let id = try context.parameters.require("id")
            let profile = try Self.validate(try await request.decodeJSON(as: PatientInput.self, context: context))
            return try await database.write { db in
                _ = try ownPatient(id, of: principal, in: db)
                try checkConflicts(profile, account: principal.subject, except: id, in: db)
                try db.execute(
                    sql: """
                        UPDATE patient SET relationship = ?, name = ?, sex = ?, birth_date = ?, resident_id = ?,
                            province = ?, phone = ?, updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: [
                        profile.relationship.rawValue, profile.name, profile.sex.rawValue, profile.birthDate,
                        profile.residentID?.value, profile.province, profile.phone?.digits, Date(), id,
                    ])
                try audit(principal, .update, patient: id, context: context, request: request, in: db)
                return Self.view(try ownPatient(id, of: principal, in: db), whole: true)
            }
        }
    }

    static func validate(_ input: PatientInput) throws(Problem) -> PatientProfile {
        do {
            return try PatientProfile.validate(input)
        } catch {
            throw Problem(
                .unprocessableContent, code: "invalid-patient", detail: "`\(error.field)` \(error.message).",
                extensions: ["field": error.field])
        }
    }

    /// The patient `id` if `principal`'s account manages it; 404 otherwise, the same answer as for an id that does
    /// not exist, so nobody learns which ids belong to others.
    private func ownPatient(_ id: String, of principal: Principal, in db: Database) throws -> Row {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM patient WHERE id = ? AND account_id = ?", arguments: [id, principal.subject])
        else {
            throw Problem.notFound("You have no patient `\(id)`.")
        }
        return row
    }

    private func checkConflicts(_ profile: PatientProfile, account: String, except id: String?, in db: Database) throws
    {
        if profile.relationship == .self,
            try Bool.fetchOne(
                db,
                sql:
                    "SELECT EXISTS (SELECT 1 FROM patient WHERE account_id = ? AND relationship = 'self' AND id IS NOT ?)",
                arguments: [account, id]) == true
        {
            throw Problem(
                .conflict, code: "self-exists", detail: "This account already has your own profile: edit that one.")
        }
        if let residentID = profile.residentID,
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM patient WHERE account_id = ? AND resident_id = ? AND id IS NOT ?)",
                arguments: [account, residentID.value, id]) == true
        {
            throw Problem(
                .conflict, code: "patient-exists",
                detail: "A patient with resident ID \(residentID.masked) is already on this account.")
        }
    }

    private func audit(
        _ principal: Principal, _ action: AuditAction, patient: String, context: ServiceRequestContext,
        request: Request, in db: Database
    ) throws {
        try AuditTrail.record(
            AuditEntry(
                actor: principal.subject, actorRole: principal.auditRole, patientID: patient, action: action,
                resourceType: "patient", resourceID: patient, requestID: context.requestID,
                clientAddress: AuthRoutes.clientAddress(request, context), outcome: .success),
            in: db)
    }

    static func view(_ row: Row, whole: Bool) -> PatientView {
        let residentID = (row["resident_id"] as String?).flatMap { try? ResidentID($0) }
        let phone = (row["phone"] as String?).flatMap(MobileNumber.init)
        return PatientView(
            id: row["id"], relationship: row["relationship"], name: row["name"], sex: row["sex"],
            birthDate: row["birth_date"], province: row["province"],
            residentId: whole ? residentID?.value : residentID?.masked, phone: whole ? phone?.digits : phone?.masked)
    }
}
