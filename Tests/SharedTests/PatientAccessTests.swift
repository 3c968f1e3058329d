import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenAudit
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

/// The access rule every service applies to patient data, through a route built the way services build theirs,
/// over a real SQLite database: own account, a relationship (the staff member's own or a team colleague's),
/// break-glass with a reason, and refusal that looks like absence, each with its audit row.
@Suite struct PatientAccessTests {
    /// A service whose relationship is a consultation: with the staff member, or with a member of their team.
    struct Consultations: PatientRelationships {
        func managingAccount(of patient: String, in db: Database) throws -> String? {
            try String.fetchOne(db, sql: "SELECT account FROM patient WHERE id = ?", arguments: [patient])
        }

        func relationship(of staff: Principal, to patient: String, in db: Database) throws -> String? {
            let doctors = try String.fetchSet(
                db, sql: "SELECT doctor FROM consultation WHERE patient = ?", arguments: [patient])
            if doctors.contains(staff.subject) { return "consultation" }
            let teams = try String.fetchSet(
                db, sql: "SELECT team FROM consultation WHERE patient = ?", arguments: [patient])
            return teams.isDisjoint(with: staff.teams) ? nil : "team"
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        AuditTrail.registerMigration(in: &migrator)
        migrator.registerMigration("patients and consultations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE patient (id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL);
                    CREATE TABLE consultation (patient TEXT NOT NULL, doctor TEXT NOT NULL, team TEXT NOT NULL);
                    INSERT INTO patient VALUES ('pat_1', 'acct_1', '王芳'), ('pat_2', 'acct_2', '李雷');
                    INSERT INTO consultation VALUES ('pat_1', 'staff_wang', 'team_a');
                    """)
        }
        return migrator
    }

    struct Outcome {
        var status: HTTPResponse.Status
        var body: String
    }

    /// Runs `body` against `GET /patients/{id}/name` of a router that uses `PatientAccess`.
    static func withService(
        _ body:
            @escaping @Sendable (
                ServiceDatabase,
                @escaping @Sendable (String, Principal.Kind, Set<Role>, Set<String>, String, String?) async throws ->
                    Outcome
            ) async throws -> Void
    ) async throws {
        let database = try ServiceDatabase.inMemory(migrator: migrator)
        let key = try SigningKey.generate(keyID: "k1")
        let issuer = await TokenIssuer(signingKey: key)
        let verifier = await TokenVerifier(publicKeys: [key.verificationKey])
        let access = PatientAccess(database: database.writer, relationships: Consultations())
        let router = ServiceApplication.makeRouter()
        router.group("patients").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get("{id}/name") { request, context -> String in
                let id = try context.parameters.require("id")
                return try await access.withPatient(
                    id, .read, "patient-name", id: id, request: request, context: context
                ) { db, basis in
                    let name = try String.fetchOne(db, sql: "SELECT name FROM patient WHERE id = ?", arguments: [id])!
                    return "\(name) \(basis)"
                }
            }
        let app = ServiceApplication.make(
            name: "test", router: router, settings: ServerSettings(port: 0), logger: .init(label: "t"))
        try await app.test(.router) { client in
            try await body(database) { subject, kind, roles, teams, patient, reason in
                let (token, _) = try await issuer.issue(subject: subject, kind: kind, roles: roles, teams: teams)
                var headers: HTTPFields = [.authorization: "Bearer \(token)"]
                if let reason { headers[BreakGlass.header] = reason }
                let response = try await client.execute(
                    uri: "/patients/\(patient)/name", method: .get, headers: headers)
                return Outcome(status: response.status, body: String(buffer: response.body))
            }
        }
    }

    static func trail(_ database: ServiceDatabase) async throws -> [String] {
        try await database.writer.read { db in
            try AuditTrail.page(AuditQuery(), in: db).map {
                "\($0.actor) \($0.patientID ?? "-") \($0.outcome) \($0.breakGlassReason ?? "-")"
            }
        }
    }

    @Test func anAccountReachesItsOwnPatientsOnly() async throws {
        try await Self.withService { database, get in
            let own = try await get("acct_1", .patient, [.patient], [], "pat_1", nil)
            #expect(own.status == .ok)
            #expect(own.body.contains("王芳 account"))
            let other = try await get("acct_1", .patient, [.patient], [], "pat_2", nil)
            let absent = try await get("acct_1", .patient, [.patient], [], "pat_9", nil)
            #expect(other.status == .notFound && absent.status == .notFound)
            #expect(
                other.body.replacingOccurrences(of: "pat_2", with: "X").replacing(/"requestId":"[0-9a-f]+"/, with: "")
                    == absent.body.replacingOccurrences(of: "pat_9", with: "X").replacing(
                        /"requestId":"[0-9a-f]+"/, with: ""))
            // A patient cannot break the glass.
            let glass = try await get("acct_1", .patient, [.patient], [], "pat_2", "emergency")
            #expect(glass.status == .forbidden && glass.body.contains("break-glass-not-allowed"))
            #expect(
                try await Self.trail(database) == [
                    "acct_1 pat_1 success -", "acct_1 pat_2 denied -", "acct_1 pat_9 denied -",
                ])
        }
    }

    @Test func staffReachAPatientThroughTheirRelationshipOrTheirTeams() async throws {
        try await Self.withService { database, get in
            let doctor = try await get("staff_wang", .staff, [.doctor], [], "pat_1", nil)
            #expect(doctor.status == .ok && doctor.body.contains("relationship(\"consultation\")"))
            let colleague = try await get("staff_chen", .staff, [.nurse], ["team_a"], "pat_1", nil)
            #expect(colleague.status == .ok && colleague.body.contains("relationship(\"team\")"))
            let otherTeam = try await get("staff_li", .staff, [.doctor], ["team_b"], "pat_1", nil)
            #expect(otherTeam.status == .notFound)
            #expect(otherTeam.body.contains("break-glass"))
            let noRelation = try await get("staff_wang", .staff, [.doctor], ["team_a"], "pat_2", nil)
            #expect(noRelation.status == .notFound)
            // Integrators and admins have no relationship with patients.
            #expect(try await get("intg_1", .integrator, [.integrator], [], "pat_1", nil).status == .notFound)
            #expect(try await get("staff_admin", .staff, [.admin], ["team_a"], "pat_2", nil).status == .notFound)
            #expect(
                try await Self.trail(database) == [
                    "staff_wang pat_1 success -", "staff_chen pat_1 success -", "staff_li pat_1 denied -",
                    "staff_wang pat_2 denied -", "intg_1 pat_1 denied -", "staff_admin pat_2 denied -",
                ])
        }
    }

    @Test func breakGlassLetsClinicalStaffInWithTheirReasonAudited() async throws {
        try await Self.withService { database, get in
            let reason = "急诊抢救，需查看既往病史"
            let encoded = reason.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let glass = try await get("staff_li", .staff, [.doctor], [], "pat_2", encoded)
            #expect(glass.status == .ok && glass.body.contains("李雷 breakGlass"))
            // Not for a patient that does not exist, and not for those who may not break the glass.
            #expect(try await get("staff_li", .staff, [.doctor], [], "pat_9", encoded).status == .notFound)
            let admin = try await get("staff_admin", .staff, [.admin, .scheduler], [], "pat_2", encoded)
            #expect(admin.status == .forbidden && admin.body.contains("break-glass-not-allowed"))
            // A reason must say something, on one line.
            for bad in [
                "", "%20%20", "ab", "%E6%80%A5%0A%E8%AF%8A%E6%8A%A2%E6%95%91", "%ZZ",
                String(repeating: "x", count: 501),
            ] {
                let refused = try await get("staff_li", .staff, [.doctor], [], "pat_2", bad)
                #expect(refused.status == .badRequest, "\(bad)")
                #expect(refused.body.contains("invalid-break-glass-reason"), "\(bad)")
            }
            // With a relationship, the reason is not needed and the access is not break-glass.
            let related = try await get("staff_wang", .staff, [.doctor], [], "pat_1", encoded)
            #expect(related.body.contains("relationship"))
            #expect(
                try await Self.trail(database) == [
                    "staff_li pat_2 success \(reason)", "staff_li pat_9 denied \(reason)",
                    "staff_wang pat_1 success -",
                ])
        }
    }
}
