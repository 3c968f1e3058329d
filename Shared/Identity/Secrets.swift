import Crypto
import Foundation

/// The small pieces every credential needs: random secrets, their salted hashes, and comparisons that take the
/// same time however much of the two values agrees.
public enum Secrets {
    /// `bytes` random bytes from the system's cryptographic generator, as lower-case hex.
    public static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// The hex SHA-256 of `<salt>:<value>`: how short-lived codes and high-entropy secrets are stored.
    public static func saltedSHA256(_ value: String, salt: String) -> String {
        SHA256.hash(data: Array("\(salt):\(value)".utf8)).map { String(format: "%02x", $0) }.joined()
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
