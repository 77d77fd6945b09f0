/// One op's causal tree as a Graphviz graph (`dot -Tsvg`).
public enum DotGraph {
    public static func render(_ op: GuestOp) -> String {
        var out = "digraph op\(op.index) {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n"
        var next = 0
        func id() -> String { defer { next += 1 }; return "n\(next)" }
        let root = id()
        let what = op.kind == .write ? "write \(op.offset)+\(op.bytes)" : op.kind.rawValue
        out += "  \(root) [label=\"\(QuotedString.escape("#\(op.index) \(what)\n\(op.entry)\n\(op.hostSyncs) host syncs"))\", style=bold];\n"
        func walk(_ node: CausalNode, parent: String) {
            let me = id()
            var label = node.symbol ?? node.kind.name
            if node.kind == .hostSync {
                label = "HOST " + (node.details.syscall ?? .sync).rawValue + "(" + (node.details.fd.map(String.init) ?? "?") + ")"
            }
            var lines = [label]
            let details = node.details.strings.filter { $0.key != "syscall" }.map { "\($0.key)=\($0.value)" }
            if !details.isEmpty { lines.append(details.joined(separator: " ")) }
            if let l = node.latencyNs { lines.append(String(format: "%.3f ms", Double(l) / 1e6)) }
            if let c = node.cause { lines.append("cause: \(c.rawValue)") }
            let style = node.kind == .hostSync ? ", style=filled, fillcolor=\"#ffd7a8\"" : ""
            out += "  \(me) [label=\"\(QuotedString.escape(lines.joined(separator: "\n")))\"\(style)];\n"
            out += "  \(parent) -> \(me);\n"
            for c in node.children { walk(c, parent: me) }
        }
        for c in op.children { walk(c, parent: root) }
        return out + "}\n"
    }
}
