import Foundation

/// What a person or system may be to the platform. A staff account may hold several roles (a doctor who also
/// schedules); a patient account and an integrator hold one each.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case patient
    case doctor
    case nurse
    case pharmacist
    /// Publishes doctors' sessions (issue 5).
    case scheduler
    /// Checks entry passes at the hospital's doors (issue 6).
    case gate
    /// Manages staff, questionnaires, articles; reads the audit trail.
    case admin
    /// A hospital system (HIS, EMR, the clinical data center) with an API key.
    case integrator

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Roles that belong to hospital staff accounts.
    public static let staffRoles: Set<Role> = [.doctor, .nurse, .pharmacist, .scheduler, .gate, .admin]
}

/// Who is making a request, as proven by a verified access token. Services put it in the request context; it
/// says who the caller is, which roles they hold and, for staff, which departments and teams they belong to; never
/// which patients they may see: that is the owning service's to decide from its own data (an appointment, a
/// consultation, a team, a ward), see `PatientAccessPolicy`.
public struct Principal: Sendable, Equatable, Codable {
    public enum Kind: String, Codable, Sendable {
        /// A patient's own account (it manages the profiles of the family members it books for).
        case patient
        case staff
        case integrator
    }

    /// The account's id (`acct_…`, `staff_…`, `intg_…`).
    public var subject: String
    public var kind: Kind
    public var roles: Set<Role>
    /// An integrator's scopes: the event types its key was granted. Empty for people.
    public var scopes: Set<String>
    /// A staff member's departments (`dept_…` ids of registration's catalogue). Empty for others.
    public var departments: Set<String>
    /// A staff member's teams (`team_…`): a service that finds a team colleague related to a patient lets the
    /// whole team in. Membership changes reach the token at its next refresh (at most 15 minutes).
    public var teams: Set<String>
    /// The token's own id (`jti`), for the audit trail and revocation lists.
    public var tokenID: String
    public var expiresAt: Date

    public init(
        subject: String, kind: Kind, roles: Set<Role>, scopes: Set<String> = [], departments: Set<String> = [],
        teams: Set<String> = [], tokenID: String, expiresAt: Date
    ) {
        self.subject = subject
        self.kind = kind
        self.roles = roles
        self.scopes = scopes
        self.departments = departments
        self.teams = teams
        self.tokenID = tokenID
        self.expiresAt = expiresAt
    }

    public func has(_ role: Role) -> Bool { roles.contains(role) }

    /// The role an audit row names: the most privileged one held.
    public var auditRole: String {
        for role in [Role.admin, .doctor, .pharmacist, .nurse, .scheduler, .gate, .integrator, .patient]
        where roles.contains(role) {
            return role.rawValue
        }
        return kind.rawValue
    }
}
