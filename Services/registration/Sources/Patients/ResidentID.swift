import Foundation

/// A mainland resident identity card number (居民身份证号码, GB 11643-1999): six digits of the administrative
/// division where it was issued, the birth date (YYYYMMDD), a three-digit sequence whose last digit is odd for men
/// and even for women, and an ISO 7064 MOD 11-2 check character (0–9 or X).
struct ResidentID: Equatable, Sendable {
    let value: String

    enum Problem: Error, Equatable, CustomStringConvertible {
        case format
        case checkDigit
        case birthDate
        case region

        var description: String {
            switch self {
            case .format: "must be 18 characters: 17 digits and a last digit or X"
            case .checkDigit: "has a wrong check digit (the last character): please check each digit"
            case .birthDate: "does not hold a valid birth date (characters 7 to 14)"
            case .region: "does not start with a known province code"
            }
        }
    }

    init(_ text: String) throws(Problem) {
        let value = text.trimmingCharacters(in: .whitespaces).uppercased()
        let characters = Array(value.utf8)
        guard characters.count == 18, characters.prefix(17).allSatisfy({ (0x30...0x39).contains($0) }),
            (0x30...0x39).contains(characters[17]) || characters[17] == UInt8(ascii: "X")
        else { throw .format }
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(characters.prefix(17), weights).reduce(0) { $0 + Int($1.0 - 0x30) * $1.1 }
        let expected = Array("10X98765432".utf8)[sum % 11]
        guard characters[17] == expected else { throw .checkDigit }
        self.value = value
        guard Self.provinces[String(value.prefix(2))] != nil else { throw .region }
        guard birthDate != nil else { throw .birthDate }
    }

    /// The birth date it holds, as `YYYY-MM-DD`, or nil when that is not a real date.
    var birthDate: String? {
        let digits = Array(value.dropFirst(6).prefix(8))
        guard let year = Int(String(digits[0..<4])), let month = Int(String(digits[4..<6])),
            let day = Int(String(digits[6..<8])), (1900...2100).contains(year)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Shanghai")!
        let components = DateComponents(year: year, month: month, day: day)
        guard let date = calendar.date(from: components),
            calendar.dateComponents([.year, .month, .day], from: date) == components
        else { return nil }
        return String(format: "%04d-%02d-%02d", year, month, day)
    }

    /// From the sequence's last digit: odd for men, even for women.
    var sex: Sex { Int(String(Array(value)[16]))! % 2 == 1 ? .male : .female }

    /// The province (or Hong Kong, Macao, Taiwan) of the first two digits.
    var province: String { Self.provinces[String(value.prefix(2))]! }

    /// `1101**********002X`: the first four and last four characters, as lists show it.
    var masked: String { String(value.prefix(4)) + String(repeating: "*", count: 10) + String(value.suffix(4)) }

    /// Province-level divisions by the first two digits of GB/T 2260.
    static let provinces: [String: String] = [
        "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古", "21": "辽宁", "22": "吉林",
        "23": "黑龙江", "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西",
        "37": "山东", "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
        "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏", "61": "陕西", "62": "甘肃",
        "63": "青海", "64": "宁夏", "65": "新疆", "71": "台湾", "81": "香港", "82": "澳门",
    ]
}

enum Sex: String, Codable, Sendable, CaseIterable {
    case male, female
}
