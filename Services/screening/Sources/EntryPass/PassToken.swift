import Crypto
import Foundation
import YunzhenIdentity

/// What an entry pass says, signed so that the gate can tell a pass screening issued from one somebody made or
/// edited: `YZP1.` followed by the base32 of the fields and a 128-bit HMAC-SHA256 tag over them.
///
/// Base32 upper case keeps the whole token within the QR alphanumeric set, the densest mode for it (version 5 at
/// level M carries a typical pass). The fields are binary: key id (4 bytes), pass id (10), valid from and expires
/// at (Unix seconds, 4 each, big-endian), then the patient id in UTF-8.
struct PassToken: Equatable, Sendable {
    static let prefix = "YZP1."

    var keyID: [UInt8]
    var passID: [UInt8]
    var validFrom: Date
    var expiresAt: Date
    var patientID: String

    enum Invalid: Error, Equatable {
        /// Not a pass of ours: wrong prefix, bad base32, too short.
        case malformed
        /// Signed by a key we do not have.
        case unknownKey
        /// The tag does not match: edited, or forged.
        case badSignature
    }

    /// The printable pass id: the 10 random bytes in lower-case hex after `pass_`.
    var passIDString: String { "pass_" + Secrets.hex(passID) }

    func signed(with key: SymmetricKey) -> String {
        let fields = self.fields
        return Self.prefix + Base32.encode(fields + Self.tag(fields, key: key))
    }

    /// Reads `token` and checks its tag with the key it names; `keys` maps a key id to its secret.
    static func verify(_ token: String, keys: (([UInt8]) -> SymmetricKey?)) throws(Invalid) -> PassToken {
        let text = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix(prefix), text.count < 400,
            let bytes = Base32.decode(String(text.dropFirst(prefix.count))), bytes.count > 22 + 16
        else { throw .malformed }
        let fields = Array(bytes.dropLast(16))
        let tag = Array(bytes.suffix(16))
        guard let key = keys(Array(fields[0..<4])) else { throw .unknownKey }
        // Compared in constant time: a timing difference would let a forger learn the tag byte by byte.
        guard Secrets.constantTimeEquals(Self.tag(fields, key: key), tag) else { throw .badSignature }
        guard let patient = String(validating: fields[22...], as: UTF8.self), !patient.isEmpty else {
            throw .malformed
        }
        return PassToken(
            keyID: Array(fields[0..<4]), passID: Array(fields[4..<14]),
            validFrom: Date(timeIntervalSince1970: TimeInterval(UInt32(bigEndian: fields[14..<18]))),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(UInt32(bigEndian: fields[18..<22]))),
            patientID: patient)
    }

    private var fields: [UInt8] {
        keyID + passID + UInt32(validFrom.timeIntervalSince1970).bigEndianBytes
            + UInt32(expiresAt.timeIntervalSince1970).bigEndianBytes + Array(patientID.utf8)
    }

    private static func tag(_ fields: [UInt8], key: SymmetricKey) -> [UInt8] {
        Array(Array(HMAC<SHA256>.authenticationCode(for: Array(prefix.utf8) + fields, using: key)).prefix(16))
    }
}

extension UInt32 {
    fileprivate init(bigEndian bytes: ArraySlice<UInt8>) {
        self = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    fileprivate var bigEndianBytes: [UInt8] { [24, 16, 8, 0].map { UInt8((self >> $0) & 0xFF) } }
}

/// RFC 4648 base32 without padding: upper-case letters and 2–7 only, which QR's alphanumeric mode carries.
enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var result: [UInt8] = []
        var buffer = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8 | Int(byte)) & 0xFFFF
            bits += 8
            while bits >= 5 {
                result.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { result.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: result, as: UTF8.self)
    }

    /// nil for any character outside the alphabet or a length no encoding produces.
    static func decode(_ text: String) -> [UInt8]? {
        var result: [UInt8] = []
        var buffer = 0
        var bits = 0
        for character in text.utf8 {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5 | value) & 0xFFFF
            bits += 5
            if bits >= 8 {
                result.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        // Leftover bits are padding: fewer than 5, and zero.
        guard bits < 5, buffer & ((1 << bits) - 1) == 0 else { return nil }
        return result
    }
}
