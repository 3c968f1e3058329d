import Foundation
import YunzhenCallout
import YunzhenContracts
import YunzhenIdentity

/// Reads the seed files and sends each record to its service through the edge, as an admin: departments, then the
/// departments' teams, then staff accounts with their departments and teams. Records that exist are updated, so
/// seeding twice changes nothing.
struct Seeder {
    let edge: String
    let client: CalloutClient
    /// A 15-minute admin token the seeder signs for itself (subject `operator:seed`, so the audit trail shows who
    /// made the changes).
    let token: String

    init(edge: String, signingKey: SigningKey, client: CalloutClient) async throws {
        self.edge = edge
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
        if FileManager.default.fileExists(atPath: staffFile.path) {
            let seeds = try read(StaffSeeds.self, staffFile)
            let (summary, passwords) = try await loadStaff(seeds)
            done.append(summary)
            if !passwords.isEmpty { try record(passwords, in: dataRoot) }
        }
        return done.joined(separator: "; ")
    }

    private func loadStaff(_ seeds: StaffSeeds) async throws -> (String, [(String, String)]) {
        var teams = try await decode(TeamList.self, send("GET", "registration/admin/teams", expect: [200]))
            .teams
        var teamsCreated = 0
        for team in seeds.teams
        where !teams.contains(where: { $0.departmentId == team.departmentId && $0.name == team.name }) {
            let response = try await send(
                "POST", "registration/admin/teams", ["departmentId": team.departmentId, "name": team.name],
                expect: [201], what: "team \(team.name)")
            teams.append(try decode(TeamRecord.self, response))
            teamsCreated += 1
        }
        let existing = try await decode(StaffList.self, send("GET", "registration/admin/staff", expect: [200])).staff
        var passwords: [(String, String)] = []
        for member in seeds.staff {
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
            "teams \(teamsCreated) created; staff \(passwords.count) created, \(seeds.staff.count - passwords.count) updated",
            passwords
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
        _ method: String, _ path: String, _ body: (some Encodable)? = nil as String?, expect: Set<Int>,
        what: String? = nil
    ) async throws -> CalloutResponse {
        var headers = [(name: "Authorization", value: "Bearer \(token)")]
        if body != nil { headers.append((name: "Content-Type", value: "application/json")) }
        let response = try await client.execute(
            CalloutRequest(
                method: method, url: "\(edge)/api/\(path)", headers: headers,
                body: try body.map { Array(try JSONEncoder().encode($0)) }))
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
