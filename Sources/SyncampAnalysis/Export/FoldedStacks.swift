/// Host syncs as folded stacks, one line per cause path with its count, for flame graphs.
///
/// A line is `frames count`, frames joined by `;` from the outermost: the op's kind,
/// the cause, the QEMU steps that led to the sync (`raw_co_flush_to_disk`, or on
/// `--detail` and stock captures the thread-pool hand-off), and the system call.
/// flamegraph.pl, inferno and speedscope read this format.
public struct FoldedStacks {
    private(set) var counts: [String: Int] = [:]

    public init() {}

    /// Adds every host sync under a finished op.
    public mutating func add(_ op: GuestOp) {
        for c in op.children { add(c, root: Self.frame(op.kind.rawValue), above: []) }
    }

    /// Adds the host syncs of a node no op took.
    public mutating func addUnplaced(_ node: CausalNode) {
        add(node, root: "unattributed", above: [])
    }

    private mutating func add(_ node: CausalNode, root: String, above: [String]) {
        if node.kind == .hostSync {
            let call = Self.frame(node.details.syscall?.rawValue ?? node.symbol ?? "sync")
            let cause = "cause:" + (node.cause ?? .unattributed).rawValue
            counts[([root, cause] + above + [call]).joined(separator: ";"), default: 0] += 1
            return
        }
        let path = above + [Self.frame(node.symbol ?? node.kind.name)]
        for c in node.children { add(c, root: root, above: path) }
    }

    /// The folded lines, sorted.
    public func render() -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
    }

    /// A frame name with no separator in it: `;` splits frames and a space ends them.
    static func frame(_ s: String) -> String {
        String(s.map { $0 == ";" || $0 == " " || $0 == "\n" ? "_" : $0 })
    }
}
