import ArgumentParser
import Foundation
import YunzhenCallout
import YunzhenContracts

/// `yunzhen seed`: loads the demo data in `seeds/` through the services' public APIs, as a client would.
struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Load seed data (departments, …) through the edge. Safe to run again: records are upserted."
    )

    @Option(help: "The edge's base URL.")
    var edge: String = "http://127.0.0.1:\(defaultEdgePort)"

    @Option(help: "Folder of seed files.")
    var seeds: String = "seeds"

    @Option(help: "Operator key. Default: the key of --data, else $YUNZHEN_OPERATOR_KEY, else .data/dev/operator.key.")
    var operatorKey: String?

    @Option(help: "Data root of a `yunzhen dev` run, whose operator.key to use.")
    var data: String?

    mutating func run() async throws {
        // The key `yunzhen dev` gave registration is the one in its data root, so a named data root wins over
        // the environment; the environment is how a production operator passes the deployment's key.
        let key =
            operatorKey ?? data.flatMap { OperatorKeyFile.load(from: URL(fileURLWithPath: $0)) }
            ?? ProcessInfo.processInfo.environment["YUNZHEN_OPERATOR_KEY"]
            ?? OperatorKeyFile.load(from: URL(fileURLWithPath: ".data/dev"))
        guard let key, !key.isEmpty else {
            throw ValidationError(
                "No operator key: pass --operator-key, set YUNZHEN_OPERATOR_KEY, or point --data at a data root with operator.key."
            )
        }
        let client = CalloutClient()
        defer { client.shutdown() }
        let summary = try await Seeder(edge: edge, operatorKey: key, client: client).load(
            from: URL(fileURLWithPath: seeds))
        print("seeded: \(summary)")
    }
}

/// Reads the seed files and sends each record to its service through the edge.
struct Seeder {
    let edge: String
    let operatorKey: String
    let client: CalloutClient

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One seed record of `departments.json`.
    struct DepartmentSeed: Decodable {
        let id: String
        let name: String
        let nameEn: String
        let description: String
    }

    /// Loads every known seed file in `folder`; returns what it did, e.g. "departments 3 created, 1 updated".
    func load(from folder: URL) async throws -> String {
        let file = folder.appendingPathComponent("departments.json")
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw Failure(description: "cannot read \(file.path): \(error.localizedDescription)")
        }
        let departments: [DepartmentSeed]
        do {
            departments = try JSONDecoder().decode([DepartmentSeed].self, from: data)
        } catch {
            throw Failure(description: "\(file.path) is not a list of departments: \(error)")
        }
        var created = 0
        var updated = 0
        for department in departments {
            let body = try JSONEncoder().encode(
                DepartmentUpsert(name: department.name, nameEn: department.nameEn, description: department.description)
            )
            let id = department.id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? department.id
            let response = try await client.execute(
                CalloutRequest(
                    method: "PUT",
                    url: "\(edge)/api/registration/departments/\(id)",
                    headers: [
                        (name: "Content-Type", value: "application/json"),
                        (name: "Authorization", value: "Bearer \(operatorKey)"),
                    ],
                    body: Array(body)
                )
            )
            switch response.status {
            case 201: created += 1
            case 200: updated += 1
            default:
                throw Failure(
                    description:
                        "department \(department.id): \(response.status) \(String(decoding: response.body, as: UTF8.self))"
                )
            }
        }
        return "departments \(created) created, \(updated) updated"
    }
}
