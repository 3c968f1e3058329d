import Hummingbird
import YunzhenIdentity

/// The interim operator credential for catalogue writes, until staff accounts and signed tokens replace it
/// (issue 4). A deployment sets a long random key (`openssl rand -hex 32`); a request proves it holds the key
/// with `Authorization: Bearer <key>`.
public struct OperatorKey: Sendable, Equatable {
    private let bytes: [UInt8]

    public init(_ key: String, variable: String) throws(ConfigurationError) {
        guard key.utf8.count >= 32 else {
            throw ConfigurationError(
                variable: variable, problem: "must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        }
        bytes = Array(key.utf8)
    }

    /// Throws 401 unless the request carries this key as a bearer token.
    public func authorize(_ request: Request) throws(Problem) {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw .unauthorized("This operation needs `Authorization: Bearer <operator key>`.")
        }
        let presented = Array(header.utf8.dropFirst("bearer ".count))
        guard Secrets.constantTimeEquals(presented, bytes) else {
            throw .unauthorized("The operator key is not valid.")
        }
    }
}
