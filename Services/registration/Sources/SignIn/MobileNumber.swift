/// A mainland China mobile number: 11 digits, starting 13–19 (the ranges the carriers assign).
struct MobileNumber: Hashable, Sendable, CustomStringConvertible {
    let digits: String

    /// Accepts the bare 11 digits, with `+86` or `86` before them, and spaces or hyphens between groups.
    init?(_ text: String) {
        var digits = text.filter { $0 != " " && $0 != "-" }
        if digits.hasPrefix("+86") {
            digits.removeFirst(3)
        } else if digits.count == 13, digits.hasPrefix("86") {
            digits.removeFirst(2)
        }
        guard digits.count == 11, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.hasPrefix("1"),
            let second = digits.dropFirst().first, ("3"..."9").contains(second)
        else { return nil }
        self.digits = digits
    }

    /// `138****5678`: how a number appears in answers and logs.
    var masked: String { String(digits.prefix(3)) + "****" + String(digits.suffix(4)) }

    var description: String { masked }
}
