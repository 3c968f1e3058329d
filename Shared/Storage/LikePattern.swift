/// SQL `LIKE` patterns from what a user typed: `%` and `_` match themselves. Use with `ESCAPE '\'`.
public enum LikePattern {
    /// Matches any text that contains `text`.
    public static func containing(_ text: String) -> String { "%" + escaped(text) + "%" }

    public static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }
}
