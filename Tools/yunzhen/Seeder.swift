import Foundation
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity

/// Reads the seed files and sends each record to its service through the edge, as an admin: departments, then the
/// departments' teams, then staff accounts with their departments and teams. Records that exist are updated, so
/// seeding twice changes nothing.
struct Seeder {
    let edge: String
    /// Registration itself (not through the edge), whose loopback-only sandbox SMS route gives the demo patients'
    /// sign-in codes in development.
    let registration: String
    let client: CalloutClient
    /// A 15-minute admin token the seeder signs for itself (subject `operator:seed`, so the audit trail shows who
    /// made the changes).
    let token: String
    /// The day sessions are published from: today in Beijing.
    var today = Date()

    init(edge: String, registration: String, signingKey: SigningKey, client: CalloutClient) async throws {
        self.edge = edge
        self.registration = registration
        self.client = client
        token = try await TokenIssuer(signingKey: signingKey).issue(
            subject: "operator:seed", kind: .staff, roles: [.admin]
        ).token
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct DepartmentSeed: Decodable {
        let id: String
        let name: String
        let nameEn: String
        let description: String
    }

    struct StaffSeeds: Decodable {
        struct Team: Decodable {
            let departmentId: String
            let name: String
        }
        struct Member: Decodable {
            let username: String
            let displayName: String
            let roles: [String]
            let departmentIds: [String]
            /// Team names, each of one of the member's departments.
            let teams: [String]?
        }
        let teams: [Team]
        let staff: [Member]
    }

    struct DoctorSeeds: Decodable {
        struct Weekly: Decodable {
            /// 1 = Monday … 7 = Sunday.
            let weekday: Int
            let period: String
            let visitType: String
            let places: Int?
            let slotMinutes: Int?
        }
        struct Doctor: Decodable {
            let id: String
            let departmentId: String
            let name: String
            let title: String
            let specialties: [String]
            let introduction: String
            let fees: [String: Int]
            let username: String
            let teams: [String]?
            let weekly: [Weekly]
        }
        let doctors: [Doctor]
    }

    struct PatientSeeds: Decodable {
        struct Account: Decodable {
            let phone: String
            let profiles: [[String: String]]
        }
        let accounts: [Account]
    }

    /// What the services answer about staff and teams (only the fields the seeder needs).
    struct StaffRecord: Decodable {
        let id: String
        let username: String
    }
    struct StaffList: Decodable { let staff: [StaffRecord] }
    struct TeamRecord: Decodable {
        let id: String
        let departmentId: String
        let name: String
    }
    struct TeamList: Decodable { let teams: [TeamRecord] }

    /// Loads every seed file in `folder`; returns what it did. New staff's temporary passwords are written to
    /// `<passwordsFile>/demo-staff.txt` (mode 0600) when a data root is given, else printed.
    func load(from folder: URL, passwordsFile dataRoot: URL? = nil) async throws -> String {
        var done: [String] = []
        let departments = try read([DepartmentSeed].self, folder.appendingPathComponent("departments.json"))
        var created = 0
        for department in departments {
            let response = try await send(
                "PUT", "registration/departments/\(Self.pathSegment(department.id))",
                DepartmentUpsert(name: department.name, nameEn: department.nameEn, description: department.description),
                expect: [200, 201], what: "department \(department.id)")
            if response.status == 201 { created += 1 }
        }
        done.append("departments \(created) created, \(departments.count - created) updated")

        let staffFile = folder.appendingPathComponent("staff.json")
        let doctorsFile = folder.appendingPathComponent("doctors.json")
        var staffSeeds = StaffSeeds(teams: [], staff: [])
        if FileManager.default.fileExists(atPath: staffFile.path) { staffSeeds = try read(StaffSeeds.self, staffFile) }
        let doctors =
            FileManager.default.fileExists(atPath: doctorsFile.path)
            ? try read(DoctorSeeds.self, doctorsFile).doctors : []
        // Each doctor signs in with a staff account of their own department.
        let accounts =
            staffSeeds.staff
            + doctors.map {
                StaffSeeds.Member(
                    username: $0.username, displayName: $0.name, roles: ["doctor"], departmentIds: [$0.departmentId],
                    teams: $0.teams)
            }
        if !accounts.isEmpty {
            let (summary, passwords, ids) = try await loadStaff(teams: staffSeeds.teams, accounts)
            done.append(summary)
            if !passwords.isEmpty { try record(passwords, in: dataRoot) }
            if !doctors.isEmpty {
                done.append(
                    try await loadDoctors(doctors, staffIDs: ids, photos: folder.appendingPathComponent("photos")))
                done.append(try await loadSessions(doctors))
            }
        }
        let patientsFile = folder.appendingPathComponent("patients.json")
        if FileManager.default.fileExists(atPath: patientsFile.path) {
            done.append(try await loadPatients(try read(PatientSeeds.self, patientsFile)))
        }
        let questionnaireFile = folder.appendingPathComponent("screening-questionnaire.json")
        if let questionnaire = try? Data(contentsOf: questionnaireFile) {
            // Published as it is (the service checks it); the same content again is refused as unchanged.
            let response = try await send(
                "POST", "screening/admin/questionnaires", raw: Array(questionnaire), expect: [201, 409],
                what: "screening questionnaire")
            done.append(
                response.status == 201 ? "screening questionnaire published" : "screening questionnaire unchanged")
        }
        let articles = folder.appendingPathComponent("articles")
        if FileManager.default.fileExists(atPath: articles.path) { done.append(try await loadArticles(articles)) }
        return done.joined(separator: "; ")
    }

    struct ArticleSeed: Codable {
        var title: String
        var titleEn: String?
        var summary: String?
        var body: String
        var tags: [String]
    }
    struct ArticleTitles: Decodable {
        struct Article: Decodable { let title: String }
        let articles: [Article]
    }

    /// The 科普 articles `NN-*.md` in `folder`, each published unless one with its title exists already.
    private func loadArticles(_ folder: URL) async throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            // Last file first: the list shows the newest first, so article 01 leads it.
            .filter { $0.hasSuffix(".md") && $0.first?.isNumber == true }.sorted(by: >)
        let existing = try decode(
            ArticleTitles.self,
            try await send("GET", "screening/articles?limit=100&withdrawn=include", expect: [200], what: "articles"))
        let titles = Set(existing.articles.map(\.title))
        var published = 0
        for file in files {
            let url = folder.appendingPathComponent(file)
            guard let article = Self.article(from: try String(contentsOf: url, encoding: .utf8)) else {
                throw Failure(description: "\(url.path) needs front matter between `---` lines with a title")
            }
            guard !titles.contains(article.title) else { continue }
            _ = try await send("POST", "screening/articles", article, expect: [201], what: "article \(file)")
            published += 1
        }
        return "articles \(published) published, \(files.count - published) there already"
    }

    /// `---`, `key: value` lines (split at the first colon: values are not YAML), `---`, then the Markdown body.
    static func article(from text: String) -> ArticleSeed? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") else { return nil }
        var fields: [String: String] = [:]
        for line in lines[1..<end] {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon]).trimmingCharacters(in: .whitespaces)] = String(
                line[line.index(after: colon)...]
            ).trimmingCharacters(in: .whitespaces)
        }
        guard let title = fields["title"], !title.isEmpty else { return nil }
        return ArticleSeed(
            title: title, titleEn: fields["titleEn"], summary: fields["summary"],
            body: lines[(end + 1)...].joined(separator: "\n"),
            tags: (fields["tags"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty })
    }

    /// Each doctor's catalogue entry (linked to their staff account), fees and photo.
    private func loadDoctors(_ doctors: [DoctorSeeds.Doctor], staffIDs: [String: String], photos: URL) async throws
        -> String
    {
        var created = 0
        for doctor in doctors {
            struct Input: Encodable {
                let departmentId: String
                let name: String
                let title: String
                let specialties: [String]
                let introduction: String
                let fees: [String: Int]
                let staffId: String?
            }
            let response = try await send(
                "PUT", "registration/admin/doctors/\(doctor.id)",
                Input(
                    departmentId: doctor.departmentId, name: doctor.name, title: doctor.title,
                    specialties: doctor.specialties, introduction: doctor.introduction, fees: doctor.fees,
                    staffId: staffIDs[doctor.username]),
                expect: [200, 201], what: "doctor \(doctor.id)")
            if response.status == 201 { created += 1 }
            let photo = photos.appendingPathComponent("\(doctor.id).png")
            if let bytes = try? Data(contentsOf: photo) {
                _ = try await send(
                    "PUT", "registration/admin/doctors/\(doctor.id)/photo", raw: Array(bytes), type: "image/png",
                    expect: [204], what: "photo of \(doctor.id)")
            }
        }
        return "doctors \(created) created, \(doctors.count - created) updated"
    }

    /// Publishes each doctor's weekly sessions for the 14 days from today (Beijing); sessions already published
    /// are left alone, and today's periods that are over are skipped.
    private func loadSessions(_ doctors: [DoctorSeeds.Doctor]) async throws -> String {
        let calendar = HospitalCalendar.shared
        let first = calendar.date(of: today)
        var published = 0
        var existing = 0
        for offset in 0..<14 {
            guard let date = calendar.date(first, plusDays: offset), let weekday = calendar.weekday(of: date) else {
                continue
            }
            for doctor in doctors {
                for weekly in doctor.weekly where weekly.weekday == weekday {
                    struct Input: Encodable {
                        let doctorId: String
                        let date: String
                        let period: String
                        let visitType: String
                        let places: Int?
                        let slotMinutes: Int?
                    }
                    let response = try await send(
                        "POST", "registration/sessions",
                        Input(
                            doctorId: doctor.id, date: date, period: weekly.period, visitType: weekly.visitType,
                            places: weekly.places, slotMinutes: weekly.slotMinutes),
                        expect: [201, 409, 422], what: "session of \(doctor.id) on \(date)")
                    switch response.status {
                    case 201: published += 1
                    case 409: existing += 1
                    default:
                        // Only a period of today that is already over may be refused.
                        guard String(decoding: response.body, as: UTF8.self).contains("is in the past") else {
                            throw Failure(
                                description:
                                    "session of \(doctor.id) on \(date): \(String(decoding: response.body, as: UTF8.self))"
                            )
                        }
                    }
                }
            }
        }
        return "sessions \(published) published, \(existing) already there"
    }

    /// Signs each demo number in through the sandbox SMS gateway and adds the profiles its account lacks.
    /// Development only: in production there is no sandbox to read codes from, and the step says so.
    private func loadPatients(_ seeds: PatientSeeds) async throws -> String {
        var added = 0
        for account in seeds.accounts {
            let sent = try await send(
                "POST", "registration/auth/sms-codes", ["phone": account.phone], expect: [202, 429],
                what: "code for \(account.phone)", authorized: false)
            if sent.status == 429 { continue }  // asked again within the cool-down: the profiles are there already
            let messages = try await client.execute(
                CalloutRequest(url: "\(registration)/internal/sandbox-sms?phone=\(account.phone)"))
            struct Recorded: Decodable {
                struct Message: Decodable { let parameters: [String: String] }
                let message: Message
            }
            struct Messages: Decodable { let messages: [Recorded] }
            guard messages.status == 200,
                let code = try? JSONDecoder().decode(Messages.self, from: Data(messages.body)).messages.last?.message
                    .parameters["code"]
            else {
                return "patients skipped (no sandbox SMS gateway at \(registration): demo patients are for development)"
            }
            let session = try await send(
                "POST", "registration/auth/sign-in", ["phone": account.phone, "code": code], expect: [200, 201],
                what: "sign-in of \(account.phone)", authorized: false)
            struct Session: Decodable { let accessToken: String }
            let patientToken = try decode(Session.self, session).accessToken
            for profile in account.profiles {
                let response = try await send(
                    "POST", "registration/me/patients", profile, expect: [201, 409], what: "patient \(account.phone)",
                    bearer: patientToken)
                if response.status == 201 { added += 1 }
            }
        }
        return "patients \(added) added"
    }

    /// Teams, then staff accounts; returns the summary, new accounts' temporary passwords and every account's id
    /// by username.
    private func loadStaff(teams seedTeams: [StaffSeeds.Team], _ members: [StaffSeeds.Member]) async throws
        -> (String, [(String, String)], [String: String])
    {
        var teams = try await decode(TeamList.self, send("GET", "registration/admin/teams", expect: [200]))
            .teams
        var teamsCreated = 0
        for team in seedTeams
        where !teams.contains(where: { $0.departmentId == team.departmentId && $0.name == team.name }) {
            let response = try await send(
                "POST", "registration/admin/teams", ["departmentId": team.departmentId, "name": team.name],
                expect: [201], what: "team \(team.name)")
            teams.append(try decode(TeamRecord.self, response))
            teamsCreated += 1
        }
        let existing = try await decode(StaffList.self, send("GET", "registration/admin/staff", expect: [200])).staff
        var passwords: [(String, String)] = []
        var ids: [String: String] = [:]
        for member in members {
            let id: String
            if let found = existing.first(where: { $0.username == member.username }) {
                id = found.id
                _ = try await send(
                    "PUT", "registration/admin/staff/\(id)",
                    StaffUpdate(
                        displayName: member.displayName, roles: member.roles, departmentIds: member.departmentIds),
                    expect: [200], what: "staff \(member.username)")
            } else {
                let password = "Demo-\(Secrets.randomHex(bytes: 5))-9"
                let response = try await send(
                    "POST", "registration/admin/staff",
                    NewStaff(
                        username: member.username, displayName: member.displayName, roles: member.roles,
                        departmentIds: member.departmentIds, temporaryPassword: password),
                    expect: [201], what: "staff \(member.username)")
                id = try decode(StaffRecord.self, response).id
                passwords.append((member.username, password))
            }
            ids[member.username] = id
            for name in member.teams ?? [] {
                guard
                    let team = teams.first(where: { $0.name == name && member.departmentIds.contains($0.departmentId) })
                else {
                    throw Failure(description: "staff \(member.username): no team \(name) in their departments")
                }
                _ = try await send(
                    "PUT", "registration/admin/teams/\(team.id)/members/\(id)", nil as String?, expect: [200],
                    what: "team member \(member.username)")
            }
        }
        return (
            "teams \(teamsCreated) created; staff \(passwords.count) created, \(members.count - passwords.count) updated",
            passwords, ids
        )
    }

    private struct NewStaff: Encodable {
        let username: String
        let displayName: String
        let roles: [String]
        let departmentIds: [String]
        let temporaryPassword: String
    }
    private struct StaffUpdate: Encodable {
        let displayName: String
        let roles: [String]
        let departmentIds: [String]
    }

    private func record(_ passwords: [(String, String)], in dataRoot: URL?) throws {
        let lines = passwords.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n"
        guard let dataRoot else {
            print(
                "new demo staff (username, temporary password; change it at first sign-in):\n\(lines)", terminator: "")
            return
        }
        let file = dataRoot.appendingPathComponent("demo-staff.txt")
        var text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        text += lines
        guard
            FileManager.default.createFile(
                atPath: file.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw Failure(description: "cannot write \(file.path)") }
    }

    private func read<Value: Decodable>(_ type: Value.Type, _ file: URL) throws -> Value {
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw Failure(description: "cannot read \(file.path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw Failure(description: "\(file.path) is not what the seeder expects: \(error)")
        }
    }

    private func send(
        _ method: String, _ path: String, _ body: (some Encodable)? = nil as String?, raw: [UInt8]? = nil,
        type: String = "application/json", expect: Set<Int>, what: String? = nil, authorized: Bool = true,
        bearer: String? = nil
    ) async throws -> CalloutResponse {
        var headers: [(name: String, value: String)] = []
        if authorized { headers.append((name: "Authorization", value: "Bearer \(bearer ?? token)")) }
        let bytes = try raw ?? body.map { Array(try JSONEncoder().encode($0)) }
        if bytes != nil { headers.append((name: "Content-Type", value: type)) }
        let response = try await client.execute(
            CalloutRequest(method: method, url: "\(edge)/api/\(path)", headers: headers, body: bytes))
        guard expect.contains(response.status) else {
            throw Failure(
                description:
                    "\(what ?? "\(method) \(path)"): \(response.status) \(String(decoding: response.body, as: UTF8.self))"
            )
        }
        return response
    }

    private func decode<Value: Decodable>(_ type: Value.Type, _ response: CalloutResponse) throws -> Value {
        try JSONDecoder().decode(type, from: Data(response.body))
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? text
    }
}
