/// A hospital department patients book with, identified by a short stable code (`hematology`).
public struct DepartmentID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// A department as registration publishes it.
public struct Department: Codable, Sendable, Equatable {
    public var id: DepartmentID
    /// Chinese name, shown first.
    public var name: String
    /// English name, for the English interface.
    public var nameEn: String
    public var description: String

    public init(id: DepartmentID, name: String, nameEn: String, description: String) {
        self.id = id
        self.name = name
        self.nameEn = nameEn
        self.description = description
    }
}

/// The body of `PUT /departments/{id}`: creates the department or replaces its fields.
public struct DepartmentUpsert: Codable, Sendable, Equatable {
    public var name: String
    public var nameEn: String
    public var description: String

    public init(name: String, nameEn: String, description: String) {
        self.name = name
        self.nameEn = nameEn
        self.description = description
    }
}

/// The body of `GET /departments`.
public struct DepartmentList: Codable, Sendable, Equatable {
    public var departments: [Department]
    public init(departments: [Department]) { self.departments = departments }
}
