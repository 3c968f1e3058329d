/// Every integration event type, in one explicit list (no reflection): tools and consumers look types up here.
public enum EventCatalog {
    public static let all: [any IntegrationEvent.Type] = [
        DepartmentSaved.self
    ]

    public static func isKnown(_ type: String) -> Bool {
        all.contains { $0.eventType == type }
    }
}

/// Registration created a department or changed its fields.
public struct DepartmentSaved: IntegrationEvent, Equatable {
    public static let eventType = "registration.department-saved.v1"
    public var departmentID: DepartmentID
    public var name: String
    public var nameEn: String
    /// True when the department did not exist before.
    public var created: Bool

    public var subject: String { departmentID.rawValue }

    public init(departmentID: DepartmentID, name: String, nameEn: String, created: Bool) {
        self.departmentID = departmentID
        self.name = name
        self.nameEn = nameEn
        self.created = created
    }
}
