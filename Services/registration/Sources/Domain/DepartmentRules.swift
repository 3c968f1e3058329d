import YunzhenContracts

/// What makes a department acceptable. Each failure says which field and how to fix it.
enum DepartmentRules {
    struct Violation: Error, Equatable {
        let field: String
        let message: String
    }

    /// A department code: 2–48 characters, lowercase letters, digits and hyphens, starting with a letter.
    static func validate(_ id: DepartmentID) throws(Violation) {
        let text = id.rawValue.utf8
        guard (2...48).contains(text.count), let first = text.first, (97...122).contains(first),
            text.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "-") })
        else {
            throw Violation(
                field: "id",
                message: "must be 2–48 lowercase letters, digits or hyphens, starting with a letter (e.g. `hematology`)"
            )
        }
    }

    static func validate(_ upsert: DepartmentUpsert) throws(Violation) {
        try requireText(upsert.name, field: "name", maximum: 64)
        try requireText(upsert.nameEn, field: "nameEn", maximum: 128)
        guard upsert.description.count <= 2000 else {
            throw Violation(field: "description", message: "must be at most 2000 characters")
        }
    }

    private static func requireText(_ value: String, field: String, maximum: Int) throws(Violation) {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw Violation(field: field, message: "must not be empty") }
        guard trimmed.count <= maximum else {
            throw Violation(field: field, message: "must be at most \(maximum) characters")
        }
    }
}
