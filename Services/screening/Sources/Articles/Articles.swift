import Foundation
import GRDB
import Hummingbird
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage

/// Popular-science articles (科普): doctors, nurses and admins write them in Markdown; anyone reads the published
/// ones, rendered to safe HTML, and finds them by a word or a tag.
struct Articles: Sendable {
    let database: any DatabaseWriter

    /// Who writes articles (and sees withdrawn ones).
    static let authorRoles: Set<Role> = [.doctor, .nurse, .admin]
    static let coverLimit = 1024 * 1024

    struct Input: Decodable, Sendable {
        var title: String
        var titleEn: String?
        var summary: String?
        /// Markdown (the subset `Markdown` renders).
        var body: String
        var tags: [String]?
    }

    struct ArticleView: ResponseEncodable, Sendable {
        var id: String
        var title: String
        var titleEn: String?
        var summary: String
        var tags: [String]
        var coverUrl: String?
        var author: String
        var publishedAt: Date
        var updatedAt: Date
        /// `published` or `withdrawn` (a withdrawn one only staff who write articles see).
        var status: String
        /// The Markdown, for editing, and its rendering, for reading.
        var body: String?
        var html: String?
    }

    struct ArticleList: ResponseEncodable, Sendable {
        var articles: [ArticleView]
        var total: Int
    }

    struct TagCount: Codable, Sendable {
        var tag: String
        var articles: Int
    }

    // MARK: Writing

    func publish(_ input: Input, audit: RequestAudit, now: Date) async throws -> ArticleView {
        let article = try Self.validated(input)
        let id = "art_" + Secrets.randomHex(bytes: 8)
        return try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO article (id, title, title_en, summary, body, html, tags, author, status, published_at,
                        updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'published', ?, ?)
                    """,
                arguments: [
                    id, article.title, article.titleEn, article.summary, article.body, Markdown.html(article.body),
                    Self.tagText(article.tags), audit.actor, now, now,
                ])
            try audit.record(.create, "article", id: id, in: db)
            return try Self.view(id, full: true, in: db)!
        }
    }

    /// Replaces an article's text: its author, or an admin.
    func update(_ id: String, _ input: Input, principal: Principal, audit: RequestAudit, now: Date) async throws
        -> ArticleView
    {
        let article = try Self.validated(input)
        return try await database.write { db in
            try Self.requireEditor(principal, of: id, in: db)
            try db.execute(
                sql: """
                    UPDATE article SET title = ?, title_en = ?, summary = ?, body = ?, html = ?, tags = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    article.title, article.titleEn, article.summary, article.body, Markdown.html(article.body),
                    Self.tagText(article.tags), now, id,
                ])
            try audit.record(.update, "article", id: id, in: db)
            return try Self.view(id, full: true, in: db)!
        }
    }

    /// Takes an article off the list (`withdrawn`) or puts it back (`published`).
    func setStatus(_ id: String, _ status: String, principal: Principal, audit: RequestAudit, now: Date) async throws
        -> ArticleView
    {
        try await database.write { db in
            try Self.requireEditor(principal, of: id, in: db)
            try db.execute(
                sql: "UPDATE article SET status = ?, updated_at = ? WHERE id = ?", arguments: [status, now, id])
            try audit.record(status == "withdrawn" ? .delete : .update, "article", id: id, in: db)
            return try Self.view(id, full: true, in: db)!
        }
    }

    func setCover(_ id: String, bytes: Data, principal: Principal, audit: RequestAudit) async throws {
        let type = try UploadedImage.check(bytes, limit: Self.coverLimit, what: "cover")
        try await database.write { db in
            try Self.requireEditor(principal, of: id, in: db)
            try db.execute(
                sql: "UPDATE article SET cover = ?, cover_type = ? WHERE id = ?", arguments: [bytes, type, id])
            try audit.record(.update, "article-cover", id: id, in: db)
        }
    }

    // MARK: Reading

    /// Published articles, newest first, containing `query` (in the title, summary, text or tags) and carrying
    /// `tag`. A staff caller sees the withdrawn ones too when `includeWithdrawn`.
    func list(query: String?, tag: String?, includeWithdrawn: Bool, limit: Int, offset: Int) async throws
        -> ArticleList
    {
        let like = query.map { LikePattern.containing($0.trimmingCharacters(in: .whitespaces)) }
        let tagLike = tag.map { "%|" + LikePattern.escaped($0) + "|%" }
        return try await database.read { db in
            let filter = """
                FROM article
                WHERE (status = 'published' OR ?1)
                  AND (?2 IS NULL OR title LIKE ?2 ESCAPE '\\' OR title_en LIKE ?2 ESCAPE '\\'
                       OR summary LIKE ?2 ESCAPE '\\' OR body LIKE ?2 ESCAPE '\\' OR tags LIKE ?2 ESCAPE '\\')
                  AND (?3 IS NULL OR tags LIKE ?3 ESCAPE '\\')
                """
            let arguments: StatementArguments = [includeWithdrawn, like, tagLike]
            let total = try Int.fetchOne(db, sql: "SELECT count(*) " + filter, arguments: arguments) ?? 0
            let ids = try String.fetchAll(
                db, sql: "SELECT id " + filter + " ORDER BY published_at DESC, id LIMIT ?4 OFFSET ?5",
                arguments: arguments + [limit, offset])
            return ArticleList(articles: try ids.compactMap { try Self.view($0, full: false, in: db) }, total: total)
        }
    }

    /// One article, rendered. A withdrawn article is unknown to everyone but staff who write articles.
    func article(_ id: String, staff: Bool) async throws -> ArticleView {
        let view = try await database.read { db in try Self.view(id, full: true, in: db) }
        guard let view, view.status == "published" || staff else { throw Self.notFound(id) }
        return view
    }

    func tags() async throws -> [TagCount] {
        let lists = try await database.read { db in
            try String.fetchAll(db, sql: "SELECT tags FROM article WHERE status = 'published'")
        }
        var counts: [String: Int] = [:]
        for list in lists {
            for tag in Self.tags(from: list) { counts[tag, default: 0] += 1 }
        }
        return counts.map { TagCount(tag: $0.key, articles: $0.value) }.sorted {
            ($0.articles, $1.tag) > ($1.articles, $0.tag)
        }
    }

    func cover(_ id: String) async throws -> (bytes: Data, contentType: String) {
        let row = try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT cover, cover_type FROM article WHERE id = ? AND status = 'published'", arguments: [id])
        }
        guard let row, let bytes = row["cover"] as Data?, let type = row["cover_type"] as String? else {
            throw Problem.notFound("Article `\(id)` has no cover.")
        }
        return (bytes, type)
    }

    // MARK: Helpers

    private static func requireEditor(_ principal: Principal, of id: String, in db: Database) throws {
        guard let author = try String.fetchOne(db, sql: "SELECT author FROM article WHERE id = ?", arguments: [id])
        else { throw notFound(id) }
        guard author == principal.subject || principal.has(.admin) else {
            throw Problem(
                .forbidden, code: "not-the-author", detail: "Only the article's author or an admin may change it.")
        }
    }

    /// The input, trimmed, or the problem naming the field to fix.
    static func validated(_ input: Input) throws -> Input {
        var article = input
        article.title = input.title.trimmingCharacters(in: .whitespacesAndNewlines)
        article.titleEn = input.titleEn?.trimmingCharacters(in: .whitespacesAndNewlines)
        article.summary = input.summary?.trimmingCharacters(in: .whitespacesAndNewlines)
        article.tags = (input.tags ?? []).map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...100).contains(article.title.count), !article.title.contains(where: \.isNewline) else {
            throw invalid("title", "must be one line of 1–100 characters")
        }
        if let titleEn = article.titleEn, titleEn.count > 200 || titleEn.contains(where: \.isNewline) {
            throw invalid("titleEn", "must be one line of at most 200 characters")
        }
        if let summary = article.summary, summary.count > 300 {
            throw invalid("summary", "must be at most 300 characters")
        }
        let lines = input.body.split(separator: "\n", omittingEmptySubsequences: false)
        guard !input.body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, input.body.count <= 30_000 else {
            throw invalid("body", "must have text, at most 30000 characters")
        }
        // Long lines would make inline rendering slow; no paragraph of an article comes near this.
        guard lines.allSatisfy({ $0.count <= 4000 }) else {
            throw invalid("body", "has a line over 4000 characters; break it into paragraphs")
        }
        let tags = article.tags ?? []
        guard tags.count <= 8, Set(tags).count == tags.count else {
            throw invalid("tags", "must be at most 8 different tags")
        }
        guard tags.allSatisfy({ (1...20).contains($0.count) && !$0.contains("|") && !$0.contains(where: \.isNewline) })
        else { throw invalid("tags", "must each be 1–20 characters, without `|`") }
        return article
    }

    /// Tags are stored as `|a|b|`, so one tag is found with `LIKE '%|a|%'`.
    static func tagText(_ tags: [String]?) -> String { "|" + (tags ?? []).map { $0 + "|" }.joined() }

    static func tags(from text: String) -> [String] { text.split(separator: "|").map(String.init) }

    static func view(_ id: String, full: Bool, in db: Database) throws -> ArticleView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT id, title, title_en, summary, body, html, tags, author, status, published_at, updated_at,
                        cover IS NOT NULL AS has_cover
                    FROM article WHERE id = ?
                    """,
                arguments: [id])
        else { return nil }
        let body: String = row["body"]
        let summary = (row["summary"] as String?).flatMap { $0.isEmpty ? nil : $0 } ?? excerpt(of: body)
        return ArticleView(
            id: id, title: row["title"], titleEn: row["title_en"], summary: summary, tags: tags(from: row["tags"]),
            coverUrl: (row["has_cover"] as Bool) ? "/api/screening/articles/\(id)/cover" : nil, author: row["author"],
            publishedAt: row["published_at"], updatedAt: row["updated_at"], status: row["status"],
            body: full ? body : nil, html: full ? row["html"] : nil)
    }

    /// The first 80 characters of the text without its markup, for a list.
    static func excerpt(of body: String) -> String {
        let plain = body.split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "#>-*+` "))
        }.filter { !$0.isEmpty }.joined(separator: " ").replacingOccurrences(of: "**", with: "")
        return plain.count > 80 ? String(plain.prefix(80)) + "…" : plain
    }

    static func notFound(_ id: String) -> Problem { Problem.notFound("There is no article `\(id)`.") }

    static func invalid(_ field: String, _ message: String) -> Problem {
        Problem(
            .unprocessableContent, code: "invalid-article", detail: "`\(field)` \(message).",
            extensions: ["field": field])
    }
}
