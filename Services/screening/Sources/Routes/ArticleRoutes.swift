import Foundation
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit

/// 科普 articles: public reading (no account needed: epidemic advice is for everyone), writing by doctors, nurses
/// and admins.
struct ArticleRoutes {
    let articles: Articles
    let verifier: TokenVerifier
    let clock: @Sendable () -> Date

    struct StatusChange: Decodable { var status: String }
    struct TagList: ResponseEncodable { var tags: [Articles.TagCount] }

    func add(to router: Router<ServiceRequestContext>) {
        // Optional authentication: a writer also sees withdrawn articles.
        let group = router.group("articles").add(
            middleware: AuthenticationMiddleware(verifier: verifier, required: false))
        group.get { request, context -> Articles.ArticleList in
            let query = request.uri.queryParameters
            let limit = try Self.integer(query["limit"], "limit", default: 20, in: 1...100)
            let offset = try Self.integer(query["offset"], "offset", default: 0, in: 0...100_000)
            let search = query["q"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            guard (search?.count ?? 0) <= 50 else {
                throw Problem(
                    .badRequest, code: "invalid-query", detail: "`q` is a word or phrase of at most 50 characters.")
            }
            return try await articles.list(
                query: search, tag: query["tag"].map(String.init).flatMap { $0.isEmpty ? nil : $0 },
                includeWithdrawn: isWriter(context) && query["withdrawn"] == "include", limit: limit, offset: offset)
        }
        group.get("tags") { _, _ -> TagList in TagList(tags: try await articles.tags()) }
        group.get("{id}") { _, context -> Articles.ArticleView in
            try await articles.article(try context.parameters.require("id"), staff: isWriter(context))
        }
        group.get("{id}/cover") { _, context -> Response in
            let cover = try await articles.cover(try context.parameters.require("id"))
            return UploadedImage.response(cover.bytes, contentType: cover.contentType)
        }
        group.post { request, context in
            let writer = try requireWriter(context)
            let input = try await request.decodeJSON(as: Articles.Input.self, context: context)
            let article = try await articles.publish(input, audit: context.audit(writer), now: clock())
            context.logger.notice("article published", metadata: ["article": "\(article.id)"])
            return EditedResponse(status: .created, response: article)
        }
        group.put("{id}") { request, context -> Articles.ArticleView in
            let writer = try requireWriter(context)
            let input = try await request.decodeJSON(as: Articles.Input.self, context: context)
            return try await articles.update(
                try context.parameters.require("id"), input, principal: writer, audit: context.audit(writer),
                now: clock())
        }
        group.put("{id}/status") { request, context -> Articles.ArticleView in
            let writer = try requireWriter(context)
            let change = try await request.decodeJSON(as: StatusChange.self, context: context)
            guard ["published", "withdrawn"].contains(change.status) else {
                throw Problem(
                    .unprocessableContent, code: "invalid-status",
                    detail: "`status` is `published` or `withdrawn`.")
            }
            return try await articles.setStatus(
                try context.parameters.require("id"), change.status, principal: writer, audit: context.audit(writer),
                now: clock())
        }
        group.put("{id}/cover") { request, context in
            let writer = try requireWriter(context)
            let bytes = try await request.body.collect(upTo: Articles.coverLimit + 1)
            try await articles.setCover(
                try context.parameters.require("id"), bytes: Data(buffer: bytes), principal: writer,
                audit: context.audit(writer))
            return Response(status: .noContent)
        }
    }

    private func isWriter(_ context: ServiceRequestContext) -> Bool {
        context.principal.map { !$0.roles.isDisjoint(with: Articles.authorRoles) } ?? false
    }

    private func requireWriter(_ context: ServiceRequestContext) throws -> Principal {
        try context.requireRole(.doctor, .nurse, .admin)
    }

    static func integer(_ text: Substring?, _ name: String, default fallback: Int, in range: ClosedRange<Int>) throws
        -> Int
    {
        guard let text else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Problem(
                .badRequest, code: "invalid-query",
                detail: "`\(name)` must be a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        return value
    }
}
