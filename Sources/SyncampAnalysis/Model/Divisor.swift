/// A divisor fixed while the model runs over many ops: a cluster size, clusters per L2 table or
/// per slice, clusters per refcount block. QEMU's are powers of two (cluster_bits,
/// l2-cache-entry-size, refcount_order), divided by a shift; any other value (a state written by
/// hand) by a division. A 64-bit division was about 3% of the analyzer's time: the model divides
/// each op's offsets by these once per run.
struct Divisor: Sendable {
    let value: UInt64
    /// log2 of `value`, or nil when it is not a power of two.
    private let shift: UInt64?

    init(_ value: UInt64) {
        self.value = value
        shift = value.nonzeroBitCount == 1 ? UInt64(value.trailingZeroBitCount) : nil
    }

    @inline(__always)
    static func / (a: UInt64, d: Divisor) -> UInt64 {
        if let s = d.shift { return a &>> s }
        return a / d.value
    }

    @inline(__always)
    static func % (a: UInt64, d: Divisor) -> UInt64 {
        if d.shift != nil { return a & (d.value &- 1) }
        return a % d.value
    }
}
