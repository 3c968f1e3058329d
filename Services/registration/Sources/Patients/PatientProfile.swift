import Foundation

/// Who a patient is to the account that manages them (就诊人): the account holder themself or a family member
/// they book for.
enum Relationship: String, Codable, Sendable, CaseIterable {
    case `self`, spouse, child, parent, sibling, other
}

/// A patient's profile as the account holder submits it. With a resident ID number, sex, birth date and province
/// come from it (and must agree with it if given); without one (a foreign or Hong Kong passport holder, say)
/// they are required.
struct PatientInput: Decodable, Sendable {
    var relationship: Relationship
    var name: String
    var residentId: String?
    var sex: Sex?
    var birthDate: String?
    var province: String?
    var phone: String?
}

/// A validated profile, ready to store.
struct PatientProfile: Sendable, Equatable {
    var relationship: Relationship
    var name: String
    var residentID: ResidentID?
    var sex: Sex
    var birthDate: String
    var province: String
    var phone: MobileNumber?

    struct Violation: Error, Equatable {
        let field: String
        let message: String
    }

    /// Checks `input` field by field; the first violation names its field.
    static func validate(_ input: PatientInput, today: Date = Date()) throws(Violation) -> PatientProfile {
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...30).contains(name.count),
            name.allSatisfy({ $0.isLetter || $0 == "·" || $0 == "•" || $0 == " " || $0 == "-" })
        else {
            throw Violation(field: "name", message: "must be 1 to 30 letters (a middle dot · and spaces allowed)")
        }
        var residentID: ResidentID?
        if let text = input.residentId, !text.isEmpty {
            do {
                residentID = try ResidentID(text)
            } catch {
                throw Violation(field: "residentId", message: "\(error)")
            }
        }
        guard let sex = input.sex ?? residentID?.sex else {
            throw Violation(field: "sex", message: "is required without a resident ID number (male or female)")
        }
        if let residentID, residentID.sex != sex {
            throw Violation(field: "sex", message: "does not match the resident ID number")
        }
        guard let birthDate = input.birthDate ?? residentID?.birthDate else {
            throw Violation(field: "birthDate", message: "is required without a resident ID number (YYYY-MM-DD)")
        }
        try checkBirthDate(birthDate, today: today)
        if let residentID, residentID.birthDate != birthDate {
            throw Violation(field: "birthDate", message: "does not match the resident ID number")
        }
        guard let province = input.province ?? residentID?.province else {
            throw Violation(field: "province", message: "is required without a resident ID number")
        }
        guard ResidentID.provinces.values.contains(province) else {
            throw Violation(field: "province", message: "must be a province name such as 北京 or 河北")
        }
        var phone: MobileNumber?
        if let text = input.phone, !text.isEmpty {
            guard let number = MobileNumber(text) else {
                throw Violation(field: "phone", message: "must be a mainland mobile number (11 digits starting 13–19)")
            }
            phone = number
        }
        return PatientProfile(
            relationship: input.relationship, name: name, residentID: residentID, sex: sex, birthDate: birthDate,
            province: province, phone: phone)
    }

    private static func checkBirthDate(_ text: String, today: Date) throws(Violation) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Shanghai")!
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard text.count == 10, parts.count == 3,
            let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
            calendar.dateComponents([.year, .month, .day], from: date)
                == DateComponents(year: parts[0], month: parts[1], day: parts[2])
        else {
            throw Violation(field: "birthDate", message: "must be a date written YYYY-MM-DD")
        }
        guard date <= today, let oldest = calendar.date(byAdding: .year, value: -130, to: today), date >= oldest else {
            throw Violation(field: "birthDate", message: "must be today or earlier, and within the last 130 years")
        }
    }
}
