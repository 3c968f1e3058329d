import Foundation
import HTTPTypes
import Hummingbird
import Testing

@testable import ScreeningService

/// The Markdown renderer: the subset articles use, and nothing a writer types can become script.
@Suite struct MarkdownTests {
    @Test func theSubsetRenders() {
        let html = Markdown.html(
            """
            # 标题
            ## 先看体温
            体温 **≥ 37.3 ℃** 请去*发热门诊*，带上`就诊卡`。
            第二行

            - 发热
            - 干咳
              持续三天
            1. 先测体温
            2. 再问病史

            > 本文为健康科普。

            ---
            见[指南](https://www.nhc.gov.cn/a?b=1&c=2)与[本站](/articles/art_1)。
            ```
            <b>code</b>
            ```
            """)
        #expect(
            html == """
                <h2>标题</h2>
                <h2>先看体温</h2>
                <p>体温 <strong>≥ 37.3 ℃</strong> 请去<em>发热门诊</em>，带上<code>就诊卡</code>。<br>
                第二行</p>
                <ul>
                <li>发热</li>
                <li>干咳 持续三天</li>
                </ul>
                <ol>
                <li>先测体温</li>
                <li>再问病史</li>
                </ol>
                <blockquote>
                <p>本文为健康科普。</p>
                </blockquote>
                <hr>
                <p>见<a href="https://www.nhc.gov.cn/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">指南</a>与<a href="/articles/art_1" rel="nofollow noopener noreferrer">本站</a>。</p>
                <pre><code>&lt;b&gt;code&lt;/b&gt;</code></pre>

                """)
    }

    @Test(arguments: [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[点我](javascript:alert(1))",
        "[点我](JavaScript:alert(1))",
        "[点我](data:text/html;base64,PHNjcmlwdD4=)",
        "[点我](//evil.example/x)",
        "[点我](https://a.example/\"onmouseover=\"alert(1))",
        "![x](https://tracker.example/p.png)",
        "**<iframe src=https://evil.example>**",
        "`</code><script>x</script>`",
        "> <svg onload=alert(1)>",
        "<a href=\"https://ok.example\">raw link</a>",
    ])
    func nothingTypedBecomesMarkup(source: String) {
        let html = Markdown.html(source)
        // The only tags are the renderer's own; whatever the writer typed is text.
        let tags = html.components(separatedBy: "<").dropFirst().map {
            String($0.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber })
        }
        #expect(Set(tags).isSubset(of: ["p", "strong", "em", "code", "pre", "blockquote", "a", "br"]), "\(html)")
        #expect(
            !html.contains("<script") && !html.contains("<img") && !html.contains("<svg") && !html.contains("<iframe"))
        #expect(!html.lowercased().contains("href=\"javascript") && !html.contains("href=\"data:"))
        #expect(!html.contains("href=\"//"))
        #expect(!html.contains("\"onmouseover"))
    }

    @Test func unmatchedMarkersStayAsTheyAre() {
        #expect(Markdown.html("3 * 4 = 12, a_b, [x], `") == "<p>3 * 4 = 12, a_b, [x], `</p>\n")
        #expect(Markdown.html("**粗体 *斜体* 粗体**") == "<p><strong>粗体 <em>斜体</em> 粗体</strong></p>\n")
    }
}

/// Articles through screening's routes: staff write, anyone reads and searches, only the author or an admin
/// changes one.
@Suite struct ArticleRoutesTests {
    static let seedFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("seeds/articles")

    @Test func staffPublishAndAnyoneFindsAndReads() async throws {
        try await ScreeningFixture.run { fixture in
            let doctor = try await fixture.headers("staff_doc", .doctor)
            let article: [String: Any] = [
                "title": "化疗期间发烧怎么办", "titleEn": "Fever during chemotherapy", "tags": ["化疗", "发热"],
                "body": "## 什么是粒缺伴发热\n中性粒细胞绝对值 **< 0.5×10⁹/L** 时发热，请立即就医。<script>x</script>",
            ]
            #expect(
                try await fixture.send(.post, "/articles", try await fixture.headers("acct_a", .patient), article).0
                    == .forbidden)
            #expect(try await fixture.send(.post, "/articles", [:], article).0 == .unauthorized)
            let created = try await fixture.send(.post, "/articles", doctor, article)
            #expect(created.0 == .created)
            let id = try #require(created.1["id"] as? String)
            let html = try #require(created.1["html"] as? String)
            #expect(html.contains("<h2>什么是粒缺伴发热</h2>") && html.contains("&lt;script&gt;"))

            // Read without signing in: listed with a summary, searched by a word of the text, filtered by tag.
            let listed = try await fixture.send(.get, "/articles")
            let first = (listed.1["articles"] as? [[String: Any]])?.first
            #expect(listed.1["total"] as? Int == 1 && first?["html"] == nil)
            #expect((first?["summary"] as? String)?.hasPrefix("什么是粒缺伴发热") == true)
            let query = "粒缺".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
            #expect(try await fixture.send(.get, "/articles?q=\(query)").1["total"] as? Int == 1)
            #expect(try await fixture.send(.get, "/articles?q=%25").1["total"] as? Int == 0)
            let tag = "化疗".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
            #expect(try await fixture.send(.get, "/articles?tag=\(tag)").1["total"] as? Int == 1)
            #expect(try await fixture.send(.get, "/articles?tag=%E5%8C%96").1["total"] as? Int == 0)
            #expect(try await fixture.send(.get, "/articles?limit=0").1["code"] as? String == "invalid-query")
            #expect(try await fixture.send(.get, "/articles/\(id)").1["title"] as? String == "化疗期间发烧怎么办")
            #expect((try await fixture.send(.get, "/articles/tags").1["tags"] as? [[String: Any]])?.count == 2)

            // Another doctor may not change it; its author and an admin may.
            var edited = article
            edited["title"] = "化疗期间发热怎么办"
            let colleague = try await fixture.send(
                .put, "/articles/\(id)", try await fixture.headers("staff_doc2", .doctor), edited)
            #expect(colleague.0 == .forbidden && colleague.1["code"] as? String == "not-the-author")
            #expect(
                try await fixture.send(.put, "/articles/\(id)", doctor, edited).1["title"] as? String == "化疗期间发热怎么办")
            let admin = try await fixture.headers("staff_admin", .admin)
            let withdrawn = try await fixture.send(.put, "/articles/\(id)/status", admin, ["status": "withdrawn"])
            #expect(withdrawn.1["status"] as? String == "withdrawn")
            // Gone for readers, still there for its writers.
            #expect(try await fixture.send(.get, "/articles/\(id)").0 == .notFound)
            #expect(try await fixture.send(.get, "/articles").1["total"] as? Int == 0)
            #expect(try await fixture.send(.get, "/articles/\(id)", doctor).0 == .ok)
            #expect(try await fixture.send(.get, "/articles?withdrawn=include", doctor).1["total"] as? Int == 1)
            #expect(
                try await fixture.send(.put, "/articles/\(id)/status", doctor, ["status": "deleted"]).0
                    == .unprocessableContent)
        }
    }

    @Test func aCoverIsAPictureOrNothing() async throws {
        try await ScreeningFixture.run { fixture in
            let nurse = try await fixture.headers("staff_nurse", .nurse)
            let id =
                try await fixture.send(.post, "/articles", nurse, ["title": "口罩怎么选", "body": "正文"]).1["id"] as! String
            let png = try QRCode(encoding: "cover").png()
            var headers = nurse
            headers[.contentType] = "image/png"
            let svg = try await fixture.client.execute(
                uri: "/articles/\(id)/cover", method: .put, headers: headers,
                body: ByteBuffer(string: "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"))
            #expect(svg.status == .unsupportedMediaType)
            let stored = try await fixture.client.execute(
                uri: "/articles/\(id)/cover", method: .put, headers: headers, body: ByteBuffer(bytes: png))
            #expect(stored.status == .noContent)
            let cover = try await fixture.client.execute(uri: "/articles/\(id)/cover", method: .get)
            #expect(cover.status == .ok && Array(buffer: cover.body) == png)
            #expect(cover.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(
                try await fixture.send(.get, "/articles/\(id)").1["coverUrl"] as? String
                    == "/api/screening/articles/\(id)/cover")
        }
    }

    @Test(arguments: [
        (#"{"title": "", "body": "x"}"#, "title"), (#"{"title": "一\n二", "body": "x"}"#, "title"),
        (#"{"title": "题", "body": "  "}"#, "body"), (#"{"title": "题", "body": "x", "tags": ["a", "a"]}"#, "tags"),
        (#"{"title": "题", "body": "x", "tags": ["a|b"]}"#, "tags"),
        (#"{"title": "题", "body": "x", "summary": 3}"#, nil),
    ])
    func eachWrongFieldIsNamed(json: String, field: String?) async throws {
        try await ScreeningFixture.run { fixture in
            let refused = try await fixture.send(
                .post, "/articles", try await fixture.headers("staff_doc", .doctor),
                try JSONSerialization.jsonObject(with: Data(json.utf8)))
            #expect(refused.0 == .unprocessableContent || refused.0 == .badRequest, "\(json)")
            if let field { #expect(refused.1["field"] as? String == field, "\(json)") }
        }
    }

    @Test func aLineTooLongToRenderQuicklyIsRefused() async throws {
        try await ScreeningFixture.run { fixture in
            let refused = try await fixture.send(
                .post, "/articles", try await fixture.headers("staff_doc", .doctor),
                ["title": "题", "body": String(repeating: "*", count: 4001)])
            #expect(refused.0 == .unprocessableContent && refused.1["field"] as? String == "body")
        }
    }

    /// The seeded 科普 articles are valid articles whose rendering has no markup they did not mean.
    @Test func theSeedArticlesArePublishable() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.seedFolder.path)
            .filter { $0.first?.isNumber == true }
        #expect(files.count == 12)
        for file in files {
            let text = try String(contentsOf: Self.seedFolder.appendingPathComponent(file), encoding: .utf8)
            let parts = text.components(separatedBy: "\n---\n")
            #expect(text.hasPrefix("---\ntitle: ") && parts.count >= 2, "\(file)")
            let body = parts.dropFirst().joined(separator: "\n---\n")
            _ = try Articles.validated(.init(title: file, body: body, tags: []))
            // A `<` of "< 0.5×10⁹/L" is text; one that opens a tag is HTML the writer should not have typed.
            let html = Markdown.html(body)
            let tagLike = html.components(separatedBy: "&lt;").dropFirst().filter {
                $0.first?.isLetter == true || $0.first == "/"
            }
            #expect(tagLike.isEmpty, "\(file) has raw HTML")
            #expect(html.contains("<blockquote>"), "\(file) ends without its disclaimer")
        }
    }
}
