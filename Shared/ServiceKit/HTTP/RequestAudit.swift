import GRDB
import YunzhenAudit
import YunzhenIdentity

/// Who is acting in a request, as the audit trail names them: the actor and role, the request id and the client's
/// address. Made once per request (`context.audit(principal)`), then `record` writes a row per access in the
/// transaction of that access.
public struct RequestAudit: Sendable {
    public var actor: String
    public var actorRole: String
    public var requestID: String
    public var clientAddress: String

    public init(actor: String, actorRole: String, requestID: String, clientAddress: String) {
        self.actor = actor
        self.actorRole = actorRole
        self.requestID = requestID
        self.clientAddress = clientAddress
    }

    /// Appends a row. `db` must be in the transaction of the access it records.
    public func record(
        _ action: AuditAction, _ resourceType: String, id resourceID: String?, patient: String? = nil,
        outcome: AuditOutcome = .success, breakGlassReason: String? = nil, in db: Database
    ) throws {
        try AuditTrail.record(
            AuditEntry(
                actor: actor, actorRole: actorRole, patientID: patient, action: action, resourceType: resourceType,
                resourceID: resourceID, requestID: requestID, clientAddress: clientAddress, outcome: outcome,
                breakGlassReason: breakGlassReason),
            in: db)
    }

    /// Records the read of each item of a list the caller is shown (each is one patient's data), in the
    /// transaction that read them.
    public func recordReads<Item>(
        _ resourceType: String, of items: [Item], id: (Item) -> String, patient: (Item) -> String, in db: Database
    ) throws {
        for item in items { try record(.read, resourceType, id: id(item), patient: patient(item), in: db) }
    }
}

extension ServiceRequestContext {
    /// The audit identity of `principal` acting in this request.
    public func audit(_ principal: Principal) -> RequestAudit {
        RequestAudit(
            actor: principal.subject, actorRole: principal.auditRole, requestID: requestID,
            clientAddress: clientAddress)
    }

    /// The audit identity of an actor known before any token exists (a staff member signing in), with the roles
    /// the audit row names.
    public func audit(actor: String, role: String) -> RequestAudit {
        RequestAudit(actor: actor, actorRole: role, requestID: requestID, clientAddress: clientAddress)
    }
}
