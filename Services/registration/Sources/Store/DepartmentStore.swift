import Foundation
import GRDB
import YunzhenContracts
import YunzhenMessaging
import YunzhenServiceKit

/// What the department routes need from storage.
protocol DepartmentStore: Sendable {
    func all() async throws -> [Department]
    func department(_ id: DepartmentID) async throws -> Department?
    /// Creates or replaces the department, publishes `DepartmentSaved` and records the change in the audit trail;
    /// returns true when it was created.
    func upsert(_ department: Department, audit: RequestAudit) async throws -> Bool
}

/// Departments in registration's SQLite database.
struct SQLiteDepartmentStore: DepartmentStore {
    let writer: any DatabaseWriter

    func all() async throws -> [Department] {
        try await writer.read { db in
            try DepartmentRow.order(Column("id")).fetchAll(db).map(\.department)
        }
    }

    func department(_ id: DepartmentID) async throws -> Department? {
        try await writer.read { db in try DepartmentRow.fetchOne(db, key: id.rawValue)?.department }
    }

    func upsert(_ department: Department, audit: RequestAudit) async throws -> Bool {
        try await writer.write { db in
            let now = Date()
            let created: Bool
            if var row = try DepartmentRow.fetchOne(db, key: department.id.rawValue) {
                row.update(from: department, at: now)
                try row.update(db)
                created = false
            } else {
                try DepartmentRow(department, at: now).insert(db)
                created = true
            }
            // In the same transaction as the change: published if and only if the change committed.
            try Outbox.publish(
                DepartmentSaved(
                    departmentID: department.id, name: department.name, nameEn: department.nameEn, created: created),
                source: "/yunzhen/registration",
                in: db
            )
            try audit.record(created ? .create : .update, "department", id: department.id.rawValue, in: db)
            return created
        }
    }
}

private struct DepartmentRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "department"

    var id: String
    var name: String
    var nameEn: String
    var description: String
    var createdAt: Date
    var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, description
        case nameEn = "name_en"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ department: Department, at time: Date) {
        id = department.id.rawValue
        name = department.name
        nameEn = department.nameEn
        description = department.description
        createdAt = time
        updatedAt = time
    }

    mutating func update(from department: Department, at time: Date) {
        name = department.name
        nameEn = department.nameEn
        description = department.description
        updatedAt = time
    }

    var department: Department {
        Department(id: DepartmentID(id), name: name, nameEn: nameEn, description: description)
    }
}
