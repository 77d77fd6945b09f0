/// Host syncs per cause summed over many ops (a capture's totals, an image's, the model's
/// predictions), in a fixed array of full-width counts, one slot per `Cause`.
///
/// `CauseCounts` holds one op's counts in 32 bits each; these sums take any number of them.
/// Causes with no sync are absent from `dictionary`.
struct CauseTotals: Sendable {
    private var n = InlineArray<26, Int>(repeating: 0)
    private var present: UInt32 = 0

    init() {}

    /// Adds one op's counts (only the causes it counted are visited).
    mutating func add(_ counts: CauseCounts) {
        var bits = counts.present
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            n[i] += counts.count(atSlot: i)
            bits &= bits - 1
        }
        present |= counts.present  // counts are never negative: a sum is 0 only where both are
    }

    /// Calls `body` with each cause that has syncs and its count, in `Cause` declaration order.
    func forEach(_ body: (Cause, Int) -> Void) {
        var bits = present
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            body(Cause.all[i], n[i])
            bits &= bits - 1
        }
    }

    /// The causes with syncs and their counts.
    var dictionary: [Cause: Int] {
        var d: [Cause: Int] = [:]
        forEach { d[$0] = $1 }
        return d
    }
}
