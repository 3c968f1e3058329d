import Foundation
import JWTKit

/// The claims of a yunzhen access token (a JWT signed with Ed25519, `alg: EdDSA`, with the signing key's `kid`
/// in its header).
struct AccessTokenClaims: JWTPayload, Equatable {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var sub: SubjectClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim
    /// `patient`, `staff` or `integrator`.
    var kind: String
    var roles: [String]
    /// What an integrator's key allows beyond its role: the event types it may receive. Absent for people.
    var scopes: [String]?
    /// A staff member's department ids. Absent for others.
    var departments: [String]?
    /// A staff member's team ids. Absent for others and for staff in no team.
    var teams: [String]?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard iss.value == AccessTokens.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "not issued by \(AccessTokens.issuer)")
        }
        try aud.verifyIntendedAudience(includes: AccessTokens.audience)
    }
}

public enum AccessTokens {
    static let issuer = "yunzhen"
    static let audience = "yunzhen-services"
    /// Short enough that a stolen token is soon useless and role changes take effect; refresh tokens carry the
    /// session beyond it.
    public static let lifetime: TimeInterval = 15 * 60
}

/// Signs access tokens. Only the service that signs people in (registration) has one.
public struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection
    public let keyID: String
    public let lifetime: TimeInterval

    public init(signingKey: SigningKey, lifetime: TimeInterval = AccessTokens.lifetime) async {
        keys = JWTKeyCollection()
        await keys.add(eddsa: signingKey.privateKey, kid: JWKIdentifier(string: signingKey.keyID))
        keyID = signingKey.keyID
        self.lifetime = lifetime
    }

    /// A signed token for `subject`, valid for `lifetime` from `now`.
    public func issue(
        subject: String, kind: Principal.Kind, roles: Set<Role>, scopes: Set<String> = [],
        departments: Set<String> = [], teams: Set<String> = [], now: Date = Date()
    ) async throws -> (token: String, principal: Principal) {
        // Whole seconds: a JWT's times are (RFC 7519 NumericDate), so the principal matches what verifiers read.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expiresAt = now.addingTimeInterval(lifetime.rounded(.down))
        let tokenID = TokenIDs.make()
        let claims = AccessTokenClaims(
            iss: .init(value: AccessTokens.issuer),
            aud: .init(value: [AccessTokens.audience]),
            sub: .init(value: subject),
            iat: .init(value: now),
            exp: .init(value: expiresAt),
            jti: .init(value: tokenID),
            kind: kind.rawValue,
            roles: roles.map(\.rawValue).sorted(),
            scopes: scopes.isEmpty ? nil : scopes.sorted(),
            departments: departments.isEmpty ? nil : departments.sorted(),
            teams: teams.isEmpty ? nil : teams.sorted()
        )
        let token = try await keys.sign(claims, kid: JWKIdentifier(string: keyID))
        return (
            token,
            Principal(
                subject: subject, kind: kind, roles: roles, scopes: scopes, departments: departments, teams: teams,
                tokenID: tokenID, expiresAt: expiresAt)
        )
    }
}

/// Why a token was refused, in words a client developer can act on.
public enum TokenRejection: Error, Equatable, CustomStringConvertible {
    case expired
    case invalid(String)

    public var description: String {
        switch self {
        case .expired: "the access token has expired"
        case .invalid(let reason): "the access token is not valid: \(reason)"
        }
    }
}

/// Verifies access tokens against the public keys this process was configured with. Every service and the edge
/// has one: a token is checked at the edge and again by the service, since a process on the host can reach a
/// service directly.
public struct TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    public let keyIDs: [String]

    /// Several keys during a rotation: tokens signed with the old key stay valid until they expire.
    public init(publicKeys: [VerificationKey]) async {
        keys = JWTKeyCollection()
        for key in publicKeys {
            await keys.add(eddsa: key.publicKey, kid: JWKIdentifier(string: key.keyID))
        }
        keyIDs = publicKeys.map(\.keyID)
    }

    public func verify(_ token: String) async throws(TokenRejection) -> Principal {
        // Named before the signature is checked, so the caller learns that the key is unknown (a rotation not yet
        // configured here) rather than that the signature is wrong.
        guard let keyID = Self.keyID(of: token) else { throw .invalid("it is not a well-formed JWT") }
        guard keyIDs.contains(keyID) else { throw .invalid("it was signed with a key this service does not know") }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError {
            if error.errorType == .claimVerificationFailure, error.failedClaim is ExpirationClaim {
                throw .expired
            }
            throw .invalid(Self.reason(error))
        } catch {
            throw .invalid("it could not be read")
        }
        guard let kind = Principal.Kind(rawValue: claims.kind) else { throw .invalid("unknown account kind") }
        let roles = Set(claims.roles.compactMap(Role.init(rawValue:)))
        guard roles.count == claims.roles.count else { throw .invalid("unknown role") }
        return Principal(
            subject: claims.sub.value, kind: kind, roles: roles, scopes: Set(claims.scopes ?? []),
            departments: Set(claims.departments ?? []), teams: Set(claims.teams ?? []), tokenID: claims.jti.value,
            expiresAt: claims.exp.value)
    }

    /// The `kid` of the token's header, or nil when the token is not three base64url parts with a JSON header.
    static func keyID(of token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[0].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        struct Header: Decodable { var kid: String? }
        guard let data = Data(base64Encoded: base64), let header = try? JSONDecoder().decode(Header.self, from: data)
        else { return nil }
        return header.kid ?? ""
    }

    private static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .signatureVerificationFailed: "its signature does not match any key this service trusts"
        case .missingKIDHeader, .unknownKID: "it was signed with a key this service does not know"
        case .malformedToken: "it is not a well-formed JWT"
        case .claimVerificationFailure: "its \(error.failedClaim.map { "\(type(of: $0))" } ?? "claims") did not verify"
        default: "it could not be verified"
        }
    }
}

/// Random ids for tokens: 128 bits, URL-safe.
enum TokenIDs {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
