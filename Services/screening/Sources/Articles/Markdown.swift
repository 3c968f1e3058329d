/// Renders the Markdown of an article to HTML that is safe to put into a page as it is.
///
/// Safety comes from the construction, not from cleaning afterwards: every character of the source is escaped,
/// and the only tags in the output are the ones written here. So raw HTML in the source shows as text, and a link
/// only becomes a link when its address is `https:`, `http:`, `mailto:` or a path on this site (never
/// `javascript:` or `data:`).
///
/// The subset, which is what 科普 articles use: headings (`#` to `######`; `#` renders as `<h2>`, since the
/// article's title is the page's `<h1>`), paragraphs, `-`/`*`/`+` and `1.` lists, `>` quotes, fenced code blocks,
/// `---` rules; inline `**strong**`, `*emphasis*`/`_emphasis_`, `` `code` ``, `[links](https://…)`. Images are not
/// rendered (an article's picture is its cover): `![alt](…)` shows its alt text.
enum Markdown {
    static func html(_ source: String) -> String {
        let lines = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return blocks(lines)
    }

    private static func blocks(_ lines: [String]) -> String {
        var html = ""
        var index = 0
        var paragraph: [String] = []
        func closeParagraph() {
            if !paragraph.isEmpty {
                html += "<p>" + paragraph.map(inline).joined(separator: "<br>\n") + "</p>\n"
                paragraph = []
            }
        }
        while index < lines.count {
            let line = lines[index]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                closeParagraph()
                index += 1
            } else if trimmed.hasPrefix("```") {
                closeParagraph()
                var code: [String] = []
                index += 1
                while index < lines.count, !lines[index].trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                    code.append(lines[index])
                    index += 1
                }
                index += 1  // the closing fence, or the end
                html += "<pre><code>" + escape(code.joined(separator: "\n")) + "</code></pre>\n"
            } else if let (level, text) = heading(trimmed) {
                closeParagraph()
                let tag = "h\(max(2, level))"
                html += "<\(tag)>" + inline(text) + "</\(tag)>\n"
                index += 1
            } else if ["---", "***", "___"].contains(trimmed.replacingOccurrences(of: " ", with: "")) {
                closeParagraph()
                html += "<hr>\n"
                index += 1
            } else if trimmed.hasPrefix(">") {
                closeParagraph()
                var quoted: [String] = []
                while index < lines.count {
                    let next = lines[index].trimmingCharacters(in: .whitespaces)
                    guard next.hasPrefix(">") else { break }
                    quoted.append(String(next.dropFirst().drop { $0 == " " }))
                    index += 1
                }
                html += "<blockquote>\n" + blocks(quoted) + "</blockquote>\n"
            } else if let kind = listItem(trimmed)?.kind {
                closeParagraph()
                var items: [String] = []
                while index < lines.count {
                    let next = lines[index].trimmingCharacters(in: .whitespaces)
                    if let item = listItem(next), item.kind == kind {
                        items.append(item.text)
                    } else if !next.isEmpty, lines[index].hasPrefix("  "), !items.isEmpty {
                        items[items.count - 1] += " " + next  // an indented continuation of the item
                    } else {
                        break
                    }
                    index += 1
                }
                let tag = kind == .ordered ? "ol" : "ul"
                html += "<\(tag)>\n" + items.map { "<li>" + inline($0) + "</li>\n" }.joined() + "</\(tag)>\n"
            } else {
                paragraph.append(trimmed)
                index += 1
            }
        }
        closeParagraph()
        return html
    }

    private static func heading(_ line: String) -> (Int, String)? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes) else { return nil }
        let rest = line.dropFirst(hashes)
        guard rest.first == " " else { return nil }
        return (hashes, rest.trimmingCharacters(in: .whitespaces))
    }

    private enum ListKind { case ordered, unordered }

    private static func listItem(_ line: String) -> (kind: ListKind, text: String)? {
        if let marker = line.first, "-*+".contains(marker), line.dropFirst().first == " " {
            return (.unordered, String(line.dropFirst(2)))
        }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        guard (1...9).contains(digits.count) else { return nil }
        let rest = line.dropFirst(digits.count)
        guard rest.hasPrefix(". ") || rest.hasPrefix(") ") else { return nil }
        return (.ordered, String(rest.dropFirst(2)))
    }

    // MARK: Inline

    /// One line's inline markup. Unmatched markers stay as the characters they are.
    static func inline(_ text: String) -> String {
        let characters = Array(text)
        var html = ""
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "\\" where index + 1 < characters.count && "\\`*_[]()#+-.!>".contains(characters[index + 1]):
                html += escape(String(characters[index + 1]))
                index += 2
            case "`":
                if let end = find("`", in: characters, from: index + 1) {
                    html += "<code>" + escape(String(characters[index + 1..<end])) + "</code>"
                    index = end + 1
                } else {
                    html += "`"
                    index += 1
                }
            case "*", "_":
                let strong = index + 1 < characters.count && characters[index + 1] == character
                let marker = strong ? String([character, character]) : String(character)
                let start = index + marker.count
                if let end = find(marker, in: characters, from: start), end > start, characters[start] != " " {
                    let tag = strong ? "strong" : "em"
                    html += "<\(tag)>" + inline(String(characters[start..<end])) + "</\(tag)>"
                    index = end + marker.count
                } else {
                    html += escape(marker)
                    index += marker.count
                }
            case "!" where index + 1 < characters.count && characters[index + 1] == "[":
                if let link = link(in: characters, at: index + 1) {
                    html += escape(link.text)  // images are not shown; the alt text is
                    index = link.end
                } else {
                    html += "!"
                    index += 1
                }
            case "[":
                if let link = link(in: characters, at: index) {
                    if let href = safeURL(link.url) {
                        html +=
                            "<a href=\"\(escape(href))\" rel=\"nofollow noopener noreferrer\">"
                            + inline(link.text) + "</a>"
                    } else {
                        html += inline(link.text)
                    }
                    index = link.end
                } else {
                    html += "["
                    index += 1
                }
            default:
                html += escape(String(character))
                index += 1
            }
        }
        return html
    }

    /// `[text](url)` starting at `start`: the text, the address and where it ends.
    private static func link(in characters: [Character], at start: Int) -> (text: String, url: String, end: Int)? {
        guard let close = find("]", in: characters, from: start + 1), close + 1 < characters.count,
            characters[close + 1] == "(", let end = find(")", in: characters, from: close + 2)
        else { return nil }
        return (
            String(characters[start + 1..<close]),
            String(characters[close + 2..<end]).trimmingCharacters(in: .whitespaces), end + 1
        )
    }

    private static func find(_ marker: String, in characters: [Character], from start: Int) -> Int? {
        let marker = Array(marker)
        guard start <= characters.count - marker.count else { return nil }
        return (start...(characters.count - marker.count)).first { Array(characters[$0..<$0 + marker.count]) == marker }
    }

    /// The address when it is one a patient may safely follow: web, mail, or a path on this site.
    static func safeURL(_ url: String) -> String? {
        let lowered = url.lowercased()
        guard !url.isEmpty, !url.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "<" || $0 == ">" }) else {
            return nil
        }
        if lowered.hasPrefix("https://") || lowered.hasPrefix("http://") || lowered.hasPrefix("mailto:") { return url }
        if url.hasPrefix("/") && !url.hasPrefix("//") && !url.hasPrefix("/\\") { return url }
        return nil
    }

    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
