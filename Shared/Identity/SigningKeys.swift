import Crypto
import Foundation
import JWTKit

/// The Ed25519 key that signs access tokens, with the id that names it in each token's header.
///
/// Configured as `YUNZHEN_AUTH_SIGNING_KEY=<kid>:<base64 of the 32-byte private key>` (`yunzhen keys generate`
/// makes one). Rotation without downtime: add the new key's public half to every process's
/// `YUNZHEN_AUTH_VERIFY_KEYS` first, then switch the signing key, and drop the old public key after 15 minutes.
public struct SigningKey: Sendable {
    public let keyID: String
    let privateKey: EdDSA.PrivateKey
    let raw: Curve25519.Signing.PrivateKey

    public init(keyID: String, rawPrivateKey: Data) throws(KeyConfigurationError) {
        try Self.validate(keyID)
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: rawPrivateKey) else {
            throw .badKey("the private key must be 32 bytes, base64-encoded")
        }
        self.keyID = keyID
        raw = key
        privateKey = EdDSA.PrivateKey(backing: key)
    }

    /// A new random key.
    public static func generate(keyID: String) throws(KeyConfigurationError) -> SigningKey {
        try SigningKey(keyID: keyID, rawPrivateKey: Curve25519.Signing.PrivateKey().rawRepresentation)
    }

    /// Parses `<kid>:<base64>`.
    public init(configuration text: String) throws(KeyConfigurationError) {
        let (keyID, bytes) = try Self.split(text)
        try self.init(keyID: keyID, rawPrivateKey: bytes)
    }

    /// The public half, for the verifiers.
    public var verificationKey: VerificationKey {
        VerificationKey(keyID: keyID, publicKey: EdDSA.PublicKey(backing: raw.publicKey))
    }

    /// `<kid>:<base64>`, as the configuration takes it.
    public var configurationText: String { "\(keyID):\(raw.rawRepresentation.base64EncodedString())" }

    static func validate(_ keyID: String) throws(KeyConfigurationError) {
        guard (1...64).contains(keyID.count),
            keyID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else {
            throw .badKey("a key id is 1 to 64 of A-Z a-z 0-9 - _ .")
        }
    }

    static func split(_ text: String) throws(KeyConfigurationError) -> (String, Data) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let bytes = Data(base64Encoded: parts[1]) else {
            throw .badKey("expected <key id>:<base64 key>")
        }
        return (parts[0], bytes)
    }
}

/// A public key that verifies access tokens, with its id.
///
/// Configured as `YUNZHEN_AUTH_VERIFY_KEYS=<kid>:<base64 of the 32-byte public key>[,<kid>:<base64>…]`.
public struct VerificationKey: Sendable {
    public let keyID: String
    let publicKey: EdDSA.PublicKey

    init(keyID: String, publicKey: EdDSA.PublicKey) {
        self.keyID = keyID
        self.publicKey = publicKey
    }

    public init(keyID: String, rawPublicKey: Data) throws(KeyConfigurationError) {
        try SigningKey.validate(keyID)
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawPublicKey) else {
            throw .badKey("a public key must be 32 bytes, base64-encoded")
        }
        self.keyID = keyID
        publicKey = EdDSA.PublicKey(backing: key)
    }

    /// `<kid>:<base64>`, as the configuration takes it.
    public var configurationText: String { "\(keyID):\(publicKey.rawRepresentation.base64EncodedString())" }

    /// Parses a comma-separated list of `<kid>:<base64>`; key ids must be unique.
    public static func list(configuration text: String) throws(KeyConfigurationError) -> [VerificationKey] {
        var keys: [VerificationKey] = []
        for item in text.split(separator: ",") where !item.trimmingCharacters(in: .whitespaces).isEmpty {
            let (keyID, bytes) = try SigningKey.split(String(item))
            guard !keys.contains(where: { $0.keyID == keyID }) else { throw .badKey("key id \(keyID) appears twice") }
            keys.append(try VerificationKey(keyID: keyID, rawPublicKey: bytes))
        }
        guard !keys.isEmpty else { throw .badKey("no keys given") }
        return keys
    }
}

public enum KeyConfigurationError: Error, Equatable, CustomStringConvertible {
    case badKey(String)

    public var description: String {
        switch self {
        case .badKey(let reason): reason
        }
    }
}
