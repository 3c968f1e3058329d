import Foundation
import GRDB
import Hummingbird
import YunzhenContracts
import YunzhenServiceKit
import YunzhenStorage

/// The doctors patients choose from: name, title, department, specialties, introduction, photo and fee per visit
/// type, with each doctor's next session that still has places. Admins keep it; anyone reads it.
struct DoctorCatalogue: Sendable {
    let database: any DatabaseWriter
    let calendar = HospitalCalendar.shared

    enum Title: String, Codable, Sendable, CaseIterable {
        case chief
        case associateChief = "associate-chief"
        case attending

        var chinese: String {
            switch self {
            case .chief: "主任医师"
            case .associateChief: "副主任医师"
            case .attending: "主治医师"
            }
        }
    }

    enum VisitType: String, Codable, Sendable, CaseIterable {
        /// At the hospital (门诊).
        case outpatient
        /// A consultation in the app (在线问诊).
        case online
    }

    struct DoctorInput: Decodable, Sendable {
        var departmentId: String
        var name: String
        var title: String
        var specialties: [String]
        var introduction: String
        /// Fee per visit type, in fen (分): `{"outpatient": 5000, "online": 3000}`.
        var fees: [String: Int]
        /// The doctor's staff account, when they sign in to the platform.
        var staffId: String?
    }

    struct NextSession: Codable, Equatable, Sendable {
        var id: String
        var date: String
        var period: String
        var visitType: String
        var placesLeft: Int
    }

    struct DoctorView: ResponseEncodable, Equatable, Sendable {
        var id: String
        var name: String
        var title: String
        var titleName: String
        var departmentId: String
        var departmentName: String
        var specialties: [String]
        var introduction: String
        var fees: [String: Int]
        var photoUrl: String?
        var nextSession: NextSession?
    }

    struct Photo: Sendable {
        var bytes: Data
        var contentType: String
    }

    /// Creates or replaces a doctor; true when created.
    func save(_ id: String, _ input: DoctorInput, audit: RequestAudit) async throws -> (DoctorView, Bool) {
        guard id.wholeMatch(of: /[a-z][a-z0-9-]{1,47}/) != nil else {
            throw Self.invalid("id", "must be 2–48 lowercase letters, digits or hyphens, starting with a letter")
        }
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...30).contains(name.count) else { throw Self.invalid("name", "must be 1 to 30 characters") }
        guard let title = Title(rawValue: input.title) else {
            throw Self.invalid("title", "must be one of \(Title.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let specialties = input.specialties.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard specialties.count <= 12, specialties.allSatisfy({ (1...30).contains($0.count) }) else {
            throw Self.invalid("specialties", "must be at most 12 entries of 1 to 30 characters")
        }
        guard input.introduction.count <= 2000 else {
            throw Self.invalid("introduction", "must be at most 2000 characters")
        }
        for (type, fee) in input.fees {
            guard VisitType(rawValue: type) != nil else {
                throw Self.invalid("fees", "has an unknown visit type `\(type)` (outpatient or online)")
            }
            guard (0...1_000_000).contains(fee) else {
                throw Self.invalid("fees", "must be whole fen from 0 to 1000000 (10,000 yuan)")
            }
        }
        let specialtiesJSON = String(decoding: try JSONEncoder().encode(specialties), as: UTF8.self)
        return try await database.write { db in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM department WHERE id = ?)", arguments: [input.departmentId])
                    == true
            else { throw Self.invalid("departmentId", "names no department") }
            if let staff = input.staffId {
                guard
                    let roles = try String.fetchOne(
                        db, sql: "SELECT roles FROM staff WHERE id = ?", arguments: [staff]),
                    StaffDirectory.roles(roles).contains(.doctor)
                else { throw Self.invalid("staffId", "must name the staff account of a doctor") }
                if try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM doctor WHERE staff_id = ? AND id != ?)",
                    arguments: [staff, id]) == true
                {
                    throw Self.invalid("staffId", "is already the account of another doctor")
                }
            }
            let now = Date()
            let exists =
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM doctor WHERE id = ?)", arguments: [id]) == true
            if exists {
                try db.execute(
                    sql: """
                        UPDATE doctor SET staff_id = ?, department_id = ?, name = ?, title = ?, specialties = ?,
                            introduction = ?, updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: [
                        input.staffId, input.departmentId, name, title.rawValue, specialtiesJSON, input.introduction,
                        now, id,
                    ])
            } else {
                try db.execute(
                    sql: """
                        INSERT INTO doctor (id, staff_id, department_id, name, title, specialties, introduction,
                            created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, input.staffId, input.departmentId, name, title.rawValue, specialtiesJSON,
                        input.introduction, now, now,
                    ])
            }
            try db.execute(sql: "DELETE FROM doctor_fee WHERE doctor_id = ?", arguments: [id])
            for (type, fee) in input.fees {
                try db.execute(
                    sql: "INSERT INTO doctor_fee (doctor_id, visit_type, fee_fen) VALUES (?, ?, ?)",
                    arguments: [id, type, fee])
            }
            try audit.record(exists ? .update : .create, "doctor", id: id, in: db)
            return (try Self.view(id, now: now, in: db)!, !exists)
        }
    }

    /// Sets the doctor's photo: a PNG or JPEG of at most 512 KiB.
    func setPhoto(_ id: String, bytes: Data, audit: RequestAudit) async throws {
        let type = try UploadedImage.check(bytes, limit: 512 * 1024, what: "photo")
        try await database.write { db in
            try db.execute(
                sql: "UPDATE doctor SET photo = ?, photo_type = ?, updated_at = ? WHERE id = ?",
                arguments: [bytes, type, Date(), id])
            guard db.changesCount == 1 else { throw Self.noDoctor(id) }
            try audit.record(.update, "doctor-photo", id: id, in: db)
        }
    }

    func photo(_ id: String) async throws -> Photo {
        let row = try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT photo, photo_type FROM doctor WHERE id = ?", arguments: [id])
        }
        guard let row, let bytes = row["photo"] as Data?, let type = row["photo_type"] as String? else {
            throw Problem.notFound("Doctor `\(id)` has no photo.")
        }
        return Photo(bytes: bytes, contentType: type)
    }

    func doctor(_ id: String, now: Date) async throws -> DoctorView {
        guard let view = try await database.read({ db in try Self.view(id, now: now, in: db) }) else {
            throw Self.noDoctor(id)
        }
        return view
    }

    /// Doctors by department, by a word of their name or specialties (`query`), or by specialty; by title, then
    /// name. At most 200.
    func search(department: String?, query: String?, specialty: String?, now: Date) async throws -> [DoctorView] {
        let like = query.map(LikePattern.containing)
        let specialtyLike = specialty.map { "%\"" + LikePattern.escaped($0) + "\"%" }
        return try await database.read { db in
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM doctor
                    WHERE (?1 IS NULL OR department_id = ?1)
                      AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\' OR specialties LIKE ?2 ESCAPE '\\')
                      AND (?3 IS NULL OR specialties LIKE ?3 ESCAPE '\\')
                    ORDER BY CASE title WHEN 'chief' THEN 0 WHEN 'associate-chief' THEN 1 ELSE 2 END, name
                    LIMIT 200
                    """,
                arguments: [department, like, specialtyLike])
            return try ids.compactMap { try Self.view($0, now: now, in: db) }
        }
    }

    // MARK: Helpers

    static func view(_ id: String, now: Date, in db: Database) throws -> DoctorView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT doctor.*, department.name AS department_name, doctor.photo IS NOT NULL AS has_photo
                    FROM doctor JOIN department ON department.id = doctor.department_id
                    WHERE doctor.id = ?
                    """,
                arguments: [id])
        else { return nil }
        var fees: [String: Int] = [:]
        for fee in try Row.fetchAll(
            db, sql: "SELECT visit_type, fee_fen FROM doctor_fee WHERE doctor_id = ?", arguments: [id])
        {
            fees[fee["visit_type"]] = fee["fee_fen"]
        }
        let title = Title(rawValue: row["title"]) ?? .attending
        let specialties =
            (try? JSONDecoder().decode([String].self, from: Data((row["specialties"] as String).utf8))) ?? []
        return DoctorView(
            id: id, name: row["name"], title: title.rawValue, titleName: title.chinese,
            departmentId: row["department_id"], departmentName: row["department_name"], specialties: specialties,
            introduction: row["introduction"], fees: fees,
            photoUrl: (row["has_photo"] as Bool) ? "/api/registration/doctors/\(id)/photo" : nil,
            nextSession: try nextSession(of: id, now: now, in: db))
    }

    /// The doctor's first open session that has not ended and still has a free place.
    static func nextSession(of doctor: String, now: Date, in db: Database) throws -> NextSession? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT session.id, session.date, session.period, session.visit_type,
                        (SELECT count(*) FROM slot LEFT JOIN appointment ON appointment.id = slot.appointment_id
                         WHERE slot.session_id = session.id AND \(AppointmentRecords.slotIsFree)) AS places_left
                    FROM session
                    WHERE session.doctor_id = :doctor AND session.status = 'open' AND session.ends_at > :now
                      AND places_left > 0
                    ORDER BY session.starts_at LIMIT 1
                    """,
                arguments: ["doctor": doctor, "now": now])
        else { return nil }
        return NextSession(
            id: row["id"], date: row["date"], period: row["period"], visitType: row["visit_type"],
            placesLeft: row["places_left"])
    }

    static func noDoctor(_ id: String) -> Problem { Problem.notFound("There is no doctor `\(id)`.") }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-doctor", detail: "`\(field)` \(message).",
            extensions: ["field": field])
    }
}
