/// The body of a double-quoted string as DOT and the Prometheus text format both write it.
enum QuotedString {
    /// Quotes and backslashes escaped, newlines as `\n`.
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }
}
