import Hummingbird
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// `/departments`: the catalogue patients choose from. Anyone may read it; admins write it.
struct DepartmentRoutes {
    let store: any DepartmentStore
    let verifier: TokenVerifier

    func add(to router: Router<ServiceRequestContext>) {
        router.get("/departments") { _, _ in
            DepartmentList(departments: try await store.all())
        }
        router.get("/departments/{id}") { _, context in
            let id = DepartmentID(try context.parameters.require("id"))
            guard let department = try await store.department(id) else {
                throw Problem.notFound("There is no department `\(id)`.")
            }
            return department
        }
        router.group("departments").add(middleware: AuthenticationMiddleware(verifier: verifier)).put("{id}") {
            request, context in
            let admin = try context.requireRole(.admin)
            let id = DepartmentID(try context.parameters.require("id"))
            let upsert = try await request.decodeJSON(as: DepartmentUpsert.self, context: context)
            do throws(DepartmentRules.Violation) {
                try DepartmentRules.validate(id)
                try DepartmentRules.validate(upsert)
            } catch {
                throw Problem(
                    .unprocessableContent, code: "invalid-department", detail: "`\(error.field)` \(error.message).")
            }
            let department = Department(
                id: id,
                name: upsert.name.trimmingCharacters(in: .whitespacesAndNewlines),
                nameEn: upsert.nameEn.trimmingCharacters(in: .whitespacesAndNewlines),
                description: upsert.description
            )
            let created = try await store.upsert(department, audit: context.audit(admin))
            context.logger.info("department saved", metadata: ["department": "\(id)", "created": "\(created)"])
            return EditedResponse(status: created ? .created : .ok, response: department)
        }
    }
}

extension Department: ResponseEncodable {}
extension DepartmentList: ResponseEncodable {}
