import Crypto
import Foundation

/// How registration and its outside providers (SMS, payment) sign what they send each other: headers
/// `X-Yunzhen-Key-Id`, `X-Yunzhen-Timestamp` (Unix seconds) and `X-Yunzhen-Signature`, the hex HMAC-SHA256 of
/// `<timestamp>\n<body>` under the secret shared with that provider. The timestamp must be within five minutes
/// of the receiver's clock, so a captured message cannot be replayed later.
struct MessageSigning: Sendable {
    let keyID: String
    let secret: SymmetricKey
    static let allowedSkew: TimeInterval = 5 * 60

    init(keyID: String, secret: String) {
        self.keyID = keyID
        self.secret = SymmetricKey(data: Array(secret.utf8))
    }

    enum Rejection: Error, Equatable, CustomStringConvertible {
        case missing(String)
        case wrongKey
        case stale
        case badSignature

        var description: String {
            switch self {
            case .missing(let header): "the \(header) header is missing"
            case .wrongKey: "it was signed with a key id we do not know"
            case .stale: "its timestamp is more than 5 minutes from our clock"
            case .badSignature: "its signature does not match"
            }
        }
    }

    /// The headers that sign `body` now.
    func headers(for body: [UInt8], now: Date = Date()) -> [(name: String, value: String)] {
        let timestamp = String(Int(now.timeIntervalSince1970))
        return [
            (name: "X-Yunzhen-Key-Id", value: keyID),
            (name: "X-Yunzhen-Timestamp", value: timestamp),
            (name: "X-Yunzhen-Signature", value: Self.signature(timestamp: timestamp, body: body, secret: secret)),
        ]
    }

    /// Checks the signature headers (`header` looks one up by name, case-insensitively) over `body`.
    func verify(body: [UInt8], header: (String) -> String?, now: Date = Date()) throws(Rejection) {
        guard let key = header("X-Yunzhen-Key-Id") else { throw .missing("X-Yunzhen-Key-Id") }
        guard let timestamp = header("X-Yunzhen-Timestamp") else { throw .missing("X-Yunzhen-Timestamp") }
        guard let signature = header("X-Yunzhen-Signature") else { throw .missing("X-Yunzhen-Signature") }
        guard key == keyID else { throw .wrongKey }
        guard let seconds = TimeInterval(timestamp),
            abs(now.timeIntervalSince1970 - seconds) <= Self.allowedSkew
        else { throw .stale }
        let expected = Self.signature(timestamp: timestamp, body: body, secret: secret)
        guard expected.utf8.count == signature.utf8.count,
            zip(expected.utf8, signature.lowercased().utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
        else { throw .badSignature }
    }

    static func signature(timestamp: String, body: [UInt8], secret: SymmetricKey) -> String {
        var signed = Array(timestamp.utf8)
        signed.append(0x0A)
        signed += body
        return HMAC<SHA256>.authenticationCode(for: signed, using: secret).map { String(format: "%02x", $0) }.joined()
    }
}
