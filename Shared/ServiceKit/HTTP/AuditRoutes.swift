import Foundation
import GRDB
import Hummingbird
import YunzhenAudit
import YunzhenIdentity
import YunzhenStorage

/// The audit trail's admin endpoints, the same in every service that keeps one:
///
///     GET /admin/audit?patient=&actor=&from=&to=&after=&limit=   a page of rows, oldest first
///     GET /admin/audit/verify                                      recomputes the hash chain
///
/// Admins only. Reading the trail is itself recorded in it.
public enum AuditRoutes {
    public static func add(
        to router: Router<ServiceRequestContext>, database: ServiceDatabase, verifier: TokenVerifier
    ) {
        let group = router.group("admin/audit").add(middleware: AuthenticationMiddleware(verifier: verifier))
        group.get { request, context -> AuditPage in
            let principal = try context.requireRole(.admin)
            let query = try auditQuery(request.uri.queryParameters)
            return try await database.writer.write { db in
                let rows = try AuditTrail.page(query, in: db)
                try context.audit(principal).record(.read, "audit-log", id: nil, patient: query.patientID, in: db)
                return AuditPage(rows: rows, next: rows.count == query.limit ? rows.last?.id : nil)
            }
        }
        group.get("verify") { _, context -> AuditVerification in
            _ = try context.requireRole(.admin)
            return try await database.writer.read { db in try AuditTrail.verify(in: db) }
        }
    }

    static func auditQuery(_ parameters: Parameters) throws(Problem) -> AuditQuery {
        var query = AuditQuery()
        query.patientID = parameters["patient"].map(String.init)
        query.actor = parameters["actor"].map(String.init)
        for (name, keyPath) in [("from", \AuditQuery.from), ("to", \AuditQuery.to)] {
            if let text = parameters[Substring(name)] {
                guard let date = try? Date(String(text), strategy: .iso8601) else {
                    throw .badRequest("`\(name)` must be an ISO 8601 time such as 2026-11-27T08:00:00Z.")
                }
                query[keyPath: keyPath] = date
            }
        }
        if let text = parameters["after"] {
            guard let after = Int64(text) else { throw .badRequest("`after` must be a row id (an integer).") }
            query.after = after
        }
        if let text = parameters["limit"] {
            guard let limit = Int(text), (1...1000).contains(limit) else {
                throw .badRequest("`limit` must be an integer from 1 to 1000.")
            }
            query.limit = limit
        }
        return query
    }
}

/// A page of the audit trail; `next` is the `after` for the following page (absent on the last).
public struct AuditPage: ResponseEncodable, Sendable {
    public var rows: [AuditRecord]
    public var next: Int64?
}

extension AuditVerification: ResponseEncodable {}
