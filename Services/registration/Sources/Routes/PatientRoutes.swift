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
///
/// `/patients/{id}`: one patient's profile for whoever `PatientAccessPolicy` lets in: the managing account, or
/// staff through a relationship or break-glass access.
struct PatientRoutes {
    let database: any DatabaseWriter
    let verifier: TokenVerifier
    var access: PatientAccess { PatientAccess(database: database, relationships: RegistrationRelationships()) }
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
        group.get { _, context -> PatientList in
            let principal = try context.requireRole(.patient)
            return try await database.write { db in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM patient WHERE account_id = ? ORDER BY created_at, id",
                    arguments: [principal.subject])
                let audit = context.audit(principal)
                for row in rows {
                    try audit.record(.read, "patient", id: row["id"], patient: row["id"], in: db)
                }
                return PatientList(patients: rows.map { Self.view($0, whole: false) })
            }
        }
        group.get("{id}") { request, context -> PatientView in
            _ = try context.requireRole(.patient)
            return try await read(try context.parameters.require("id"), request: request, context: context)
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
                try Self.checkConflicts(profile, account: principal.subject, except: nil, in: db)
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
                try context.audit(principal).record(.create, "patient", id: id, patient: id, in: db)
                return Self.view(try Self.patient(id, in: db), whole: true)
            }
            context.logger.info(
                "patient added", metadata: ["patient": "\(view.id)", "account": "\(principal.subject)"])
            return EditedResponse(status: .created, response: view)
        }
        group.put("{id}") { request, context -> PatientView in
            let principal = try context.requireRole(.patient)
            let id = try context.parameters.require("id")
            let profile = try Self.validate(try await request.decodeJSON(as: PatientInput.self, context: context))
            return try await access.withPatient(id, .update, "patient", id: id, request: request, context: context) {
                db, _ in
                try Self.checkConflicts(profile, account: principal.subject, except: id, in: db)
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
                return Self.view(try Self.patient(id, in: db), whole: true)
            }
        }
        router.group("patients").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get("{id}") { request, context -> PatientView in
                try await read(try context.parameters.require("id"), request: request, context: context)
            }
    }

    /// One patient, whole, if the caller may see them.
    private func read(_ id: String, request: Request, context: ServiceRequestContext) async throws -> PatientView {
        try await access.withPatient(id, .read, "patient", id: id, request: request, context: context) { db, _ in
            Self.view(try Self.patient(id, in: db), whole: true)
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

    /// The row of a patient the caller was already let in to.
    private static func patient(_ id: String, in db: Database) throws -> Row {
        try Row.fetchOne(db, sql: "SELECT * FROM patient WHERE id = ?", arguments: [id])!
    }

    private static func checkConflicts(_ profile: PatientProfile, account: String, except id: String?, in db: Database)
        throws
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

    static func view(_ row: Row, whole: Bool) -> PatientView {
        let residentID = (row["resident_id"] as String?).flatMap { try? ResidentID($0) }
        let phone = (row["phone"] as String?).flatMap(MobileNumber.init)
        return PatientView(
            id: row["id"], relationship: row["relationship"], name: row["name"], sex: row["sex"],
            birthDate: row["birth_date"], province: row["province"],
            residentId: whole ? residentID?.value : residentID?.masked, phone: whole ? phone?.digits : phone?.masked)
    }
}

/// Who may see a patient in registration: the account that manages them and, among staff, those the patient
/// booked: an appointment (not cancelled) with the staff member's doctor profile, or with a colleague of their
/// team (治疗组), who shares the team's patients.
struct RegistrationRelationships: PatientRelationships {
    func managingAccount(of patient: String, in db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT account_id FROM patient WHERE id = ?", arguments: [patient])
    }

    func relationship(of staff: Principal, to patient: String, in db: Database) throws -> String? {
        let doctors = try String.fetchSet(
            db,
            sql: """
                SELECT doctor.staff_id FROM appointment
                JOIN session ON session.id = appointment.session_id JOIN doctor ON doctor.id = session.doctor_id
                WHERE appointment.patient_id = ? AND appointment.status != 'cancelled' AND doctor.staff_id IS NOT NULL
                """,
            arguments: [patient])
        if doctors.contains(staff.subject) { return "appointment" }
        guard !doctors.isEmpty, !staff.teams.isEmpty else { return nil }
        let colleagues = try String.fetchSet(
            db,
            sql: "SELECT staff_id FROM team_member WHERE team_id IN (SELECT value FROM json_each(?))",
            arguments: [String(decoding: try JSONEncoder().encode(staff.teams.sorted()), as: UTF8.self)])
        return doctors.isDisjoint(with: colleagues) ? nil : "team"
    }
}
