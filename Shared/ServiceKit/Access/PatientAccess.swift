import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import YunzhenAudit
import YunzhenIdentity

/// What a service knows of who may see its patients: each service answers from its own data (registration from
/// accounts and appointments, consult from consultations, the ward's service from admissions).
public protocol PatientRelationships: Sendable {
    /// The patient account (`acct_…`) that manages `patient` (its holder, or the family member who books for
    /// them), when this service knows the patient; nil otherwise.
    func managingAccount(of patient: String, in db: Database) throws -> String?

    /// The relationship that lets `staff` see `patient` here, named for the audit trail (`appointment`,
    /// `consultation`, `team`, `ward`), or nil when there is none. A team colleague's relationship counts: the
    /// principal carries the staff member's teams.
    func relationship(of staff: Principal, to patient: String, in db: Database) throws -> String?
}

/// Why a caller was let in to a patient's data.
public enum PatientAccessBasis: Sendable, Equatable {
    /// The patient's own account (themselves, or a family member the account books for).
    case account
    /// Staff with a relationship to the patient, named.
    case relationship(String)
    /// Staff without a relationship, who declared an emergency with a written reason. The audit row carries the
    /// reason; these rows are what an auditor reviews first.
    case breakGlass(reason: String)
}

/// The one rule every service applies before it returns or changes a patient's data (ARCHITECTURE.md §6):
/// a patient account reaches its own patients; staff reach a patient through a relationship the service can check,
/// or through break-glass access with a written reason; nobody else reaches patient data.
///
/// Refusals are indistinguishable from a patient that does not exist (404), so probing ids learns nothing; the
/// refusal itself is audited.
public struct PatientAccessPolicy: Sendable {
    public let relationships: any PatientRelationships

    /// Clinical staff may break the glass in an emergency; an admin, a scheduler or a gate keeper may not.
    public static let breakGlassRoles: Set<Role> = [.doctor, .nurse, .pharmacist]

    public init(relationships: any PatientRelationships) {
        self.relationships = relationships
    }

    /// Why `principal` may reach `patient`, or nil when they may not (or the patient is unknown here).
    public func basis(
        for principal: Principal, patient: String, breakGlassReason: String?, in db: Database
    ) throws -> PatientAccessBasis? {
        switch principal.kind {
        case .patient:
            return try relationships.managingAccount(of: patient, in: db) == principal.subject ? .account : nil
        case .staff:
            if let name = try relationships.relationship(of: principal, to: patient, in: db) {
                return .relationship(name)
            }
            guard let reason = breakGlassReason, try relationships.managingAccount(of: patient, in: db) != nil else {
                return nil
            }
            return .breakGlass(reason: reason)
        case .integrator:
            // Integrators receive events their key's scopes allow; reading a patient's record is not one of them.
            return nil
        }
    }
}

/// Runs a service's patient-data work behind `PatientAccessPolicy`, with its audit row in the same transaction.
public struct PatientAccess: Sendable {
    public let database: any DatabaseWriter
    public let policy: PatientAccessPolicy

    public init(database: any DatabaseWriter, relationships: any PatientRelationships) {
        self.database = database
        self.policy = PatientAccessPolicy(relationships: relationships)
    }

    /// Runs `work` in one write transaction when the caller may reach `patient`, recording the access (`action`
    /// on `resourceType`/`resourceID`) in the same transaction; a break-glass access carries its reason. When the
    /// caller may not, records the refusal and answers 404 as for a patient that does not exist.
    ///
    /// The break-glass reason is the request's `Yunzhen-Break-Glass-Reason` header (percent-encoded UTF-8, so
    /// it can be written in Chinese); only clinical staff may send one. `refusal` replaces the 404 that names the
    /// patient, when the caller asked for something else (an appointment) and must not learn whose it is.
    public func withPatient<Value: Sendable>(
        _ patient: String, _ action: AuditAction, _ resourceType: String, id resourceID: String?,
        request: Request, context: ServiceRequestContext, refusal: Problem? = nil,
        _ work: @escaping @Sendable (Database, PatientAccessBasis) throws -> Value
    ) async throws -> Value {
        let principal = try context.requirePrincipal()
        let reason = try BreakGlass.reason(in: request, of: principal)
        let audit = context.audit(principal)
        let policy = self.policy
        let outcome: Result<Value, Problem> = try await database.write { db in
            guard let basis = try policy.basis(for: principal, patient: patient, breakGlassReason: reason, in: db)
            else {
                try audit.record(
                    action, resourceType, id: resourceID, patient: patient, outcome: .denied,
                    breakGlassReason: reason, in: db)
                return .failure(refusal ?? Self.notFound(patient, for: principal))
            }
            let value = try work(db, basis)
            var breakGlassReason: String? = nil
            if case .breakGlass(let reason) = basis { breakGlassReason = reason }
            try audit.record(
                action, resourceType, id: resourceID, patient: patient, breakGlassReason: breakGlassReason, in: db)
            return .success(value)
        }
        if case .success = outcome, reason != nil {
            context.logger.notice(
                "break-glass access", metadata: ["patient": "\(patient)", "staff": "\(principal.subject)"])
        }
        return try outcome.get()
    }

    /// Runs `work` on one of a patient's resources (an appointment, a screening): `patientOf` finds whose it is,
    /// then as `withPatient`. An unknown resource and a refused caller get the same `refusal`, which names the
    /// resource, never the patient.
    public func withResource<Value: Sendable>(
        _ resourceType: String, id: String, _ action: AuditAction, request: Request, context: ServiceRequestContext,
        refusal: Problem, patientOf: @escaping @Sendable (Database) throws -> String?,
        _ work: @escaping @Sendable (Database, PatientAccessBasis) throws -> Value
    ) async throws -> Value {
        guard let patient = try await database.read(patientOf) else { throw refusal }
        return try await withPatient(
            patient, action, resourceType, id: id, request: request, context: context, refusal: refusal, work)
    }

    /// The same answer whether the patient does not exist or the caller may not see them.
    static func notFound(_ patient: String, for principal: Principal) -> Problem {
        switch principal.kind {
        case .patient:
            Problem.notFound("You have no patient `\(patient)`.")
        case .staff:
            Problem.notFound(
                "No patient `\(patient)` that you may see: it takes a relationship with them (an appointment, a consultation, your team, your ward) or break-glass access (the `Yunzhen-Break-Glass-Reason` header)."
            )
        case .integrator:
            Problem.notFound("No patient `\(patient)`.")
        }
    }
}

/// Break-glass access: a doctor, nurse or pharmacist without a relationship to a patient sees their data in an
/// emergency by saying why, in the `Yunzhen-Break-Glass-Reason` header of each request (percent-encoded UTF-8).
/// Every such access is audited with the reason.
public enum BreakGlass {
    public static let header = HTTPField.Name("Yunzhen-Break-Glass-Reason")!
    public static let reasonLength = 4...500

    /// The request's break-glass reason; nil without the header. 400 for an unreadable or empty reason, 403 when
    /// the caller may not break the glass.
    public static func reason(in request: Request, of principal: Principal) throws(Problem) -> String? {
        guard let raw = request.headers[header] else { return nil }
        guard principal.kind == .staff, !principal.roles.isDisjoint(with: PatientAccessPolicy.breakGlassRoles) else {
            throw Problem(
                .forbidden, code: "break-glass-not-allowed",
                detail: "Only doctors, nurses and pharmacists may use break-glass access.")
        }
        guard let decoded = raw.removingPercentEncoding?.trimmingCharacters(in: .whitespacesAndNewlines),
            reasonLength.contains(decoded.count), !decoded.contains(where: { $0.isNewline })
        else {
            throw Problem(
                .badRequest, code: "invalid-break-glass-reason",
                detail:
                    "`Yunzhen-Break-Glass-Reason` must be a reason of \(reasonLength.lowerBound) to \(reasonLength.upperBound) characters on one line, percent-encoded UTF-8."
            )
        }
        return decoded
    }
}
