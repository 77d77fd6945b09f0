/// One op's host syncs per cause in a fixed array, one slot per `Cause`: what the model counts
/// per op, without the allocation and hashing of a `[Cause: Int]` in every replay.
///
/// Counts are 32-bit: an op's syncs are events of one capture, and the half-size array (108
/// bytes, not 212) is copied with each summary and each model's answer. Sums over a whole
/// capture go in `CauseTotals`.
///
/// Causes with no sync count 0 and are absent from `dictionary`, as a dictionary counted up
/// from empty leaves them.
struct CauseCounts: Sendable, Equatable {
    private var n = InlineArray<26, UInt32>(repeating: 0)
    /// Bit `slot` set for each cause with a count: most ops have none or one, and the loops
    /// below visit only those.
    private(set) var present: UInt32 = 0

    /// The count of the cause in `slot` (`Cause.slot`), for sums that walk `present`.
    @inline(__always)
    func count(atSlot slot: Int) -> Int { Int(n[slot]) }

    init() {}

    subscript(_ c: Cause) -> Int {
        get { Int(n[c.slot]) }
        set {
            n[c.slot] = UInt32(newValue)
            if newValue != 0 { present |= 1 << c.slot } else { present &= ~(1 << c.slot) }
        }
    }

    @inline(__always)  // read in place: out of line, a caller holding the counts in an array copied them
    var isEmpty: Bool { present == 0 }

    /// Back to no sync, in place (only the counted slots are written).
    mutating func removeAll() {
        var bits = present
        while bits != 0 {
            n[bits.trailingZeroBitCount] = 0
            bits &= bits - 1
        }
        present = 0
    }

    /// All host syncs.
    var total: Int {
        var t = 0, bits = present
        while bits != 0 {
            t += Int(n[bits.trailingZeroBitCount])
            bits &= bits - 1
        }
        return t
    }

    mutating func add(_ other: CauseCounts) {
        // Element by element, not through `other.n.span`: taking the span copied all 212 bytes of
        // `other` first, on every call (most ops have no sync at all).
        var bits = other.present
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            n[i] += other.n[i]
            bits &= bits - 1
        }
        present |= other.present  // counts are never negative: a sum is 0 only where both are
    }

    /// The counts of a dictionary (causes counted 0 are left out, as counting leaves them).
    init(_ d: [Cause: Int]) {
        for (c, n) in d where n != 0 { self[c] = n }
    }

    /// The causes with syncs and their counts.
    var dictionary: [Cause: Int] {
        var d: [Cause: Int] = [:]
        guard present != 0 else { return d }
        for c in Cause.all where n[c.slot] != 0 { d[c] = Int(n[c.slot]) }
        return d
    }

    @inline(__always)
    static func == (a: CauseCounts, b: CauseCounts) -> Bool {
        // Most ops have no sync: equal with no count read. The counts are compared out of line:
        // a span of a parameter copies the array, and that copy was made on every comparison.
        a.present == b.present && (a.present == 0 || sameCounts(a, b))
    }

    @inline(never)
    private static func sameCounts(_ a: CauseCounts, _ b: CauseCounts) -> Bool {
        var bits = a.present
        let x = a.n.span, y = b.n.span
        while bits != 0 {
            let i = bits.trailingZeroBitCount
            if x[i] != y[i] { return false }
            bits &= bits - 1
        }
        return true
    }
}

extension Cause {
    /// `allCases`, built once.
    static let all = allCases

    /// The cause's place in `CauseCounts`: its declaration order.
    var slot: Int {
        switch self {
        case .guestFlush: 0
        case .refcountDependency: 1
        case .cowDependsOnFlush: 2
        case .l2TableAlloc: 3
        case .l1TableGrow: 4
        case .refcountBlockAlloc: 5
        case .refcountTableGrow: 6
        case .dependencyCrossFlush: 7
        case .l2Dependency: 8
        case .cacheEviction: 9
        case .resizeHeader: 10
        case .cacheReconfigure: 11
        case .lazyDirtyBit: 12
        case .imageClose: 13
        case .writethrough: 14
        case .vmdkGrainTable: 15
        case .vmdkDescriptor: 16
        case .formatMetadata: 17
        case .imageCreate: 18
        case .snapshot: 19
        case .imageCheck: 20
        case .makeEmpty: 21
        case .bitmap: 22
        case .imageOpen: 23
        case .housekeeping: 24
        case .unattributed: 25
        }
    }
}
