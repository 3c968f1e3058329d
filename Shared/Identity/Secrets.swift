import Crypto
import Foundation

/// The small pieces every credential needs: random secrets, their salted hashes, and comparisons that take the
/// same time however much of the two values agrees.
public enum Secrets {
    /// `bytes` random bytes from the system's cryptographic generator, as lower-case hex.
    public static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The hex SHA-256 of `<salt>:<value>`: how short-lived codes and high-entropy secrets are stored.
    public static func saltedSHA256(_ value: String, salt: String) -> String {
        hex(SHA256.hash(data: Array("\(salt):\(value)".utf8)))
    }

    /// Lower-case hex, two digits a byte.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The bytes of lower-case or upper-case hex; nil for an odd length or a character that is not a hex digit.
    public static func bytes(hex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }

    /// Compares without stopping at the first difference, so response time does not reveal how much matched.
    public static func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        let left = Array(lhs)
        let right = Array(rhs)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }

    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        constantTimeEquals(lhs.utf8, rhs.utf8)
    }
}
