import SyncampCapture

/// Looks up what a uprobe event means: its role and where its named values are.
public struct ProbeIndex: Sendable {
    public struct Entry: Sendable {
        public var role: ProbeRole?
        public var symbol: String
        public var isFallback: Bool
        public var derefSlots: [String: Int]
        /// Values the event gives as constants (USDT: which cache an id stands for).
        public var constants: [String: UInt64] = [:]
        public var isUSDT = false
        /// USDT probes: where the coroutine is ("arg0", "deref:NAME", "next"), or nil.
        public var coroutineFrom: String?
    }

    public let entries: [Entry]

    public init(manifest: Manifest) {
        entries = manifest.probes.sorted { $0.id < $1.id }.map { p in
            var slots: [String: Int] = [:]
            for (i, n) in p.derefs.enumerated() { slots[n] = i }
            return Entry(role: ProbeRole(rawValue: p.role), symbol: p.symbol, isFallback: p.isFallback, derefSlots: slots,
                         constants: p.constants ?? [:], isUSDT: p.table == "usdt", coroutineFrom: p.coroutineFrom)
        }
        isUSDT = entries.contains { $0.isUSDT }
    }

    /// Whether the capture's probes are QEMU's USDT probes (dtrace trace backend), not function uprobes.
    public let isUSDT: Bool

    /// The entry of a uprobe event, if its probe id is in the manifest.
    public func entry(_ e: Event) -> Entry? {
        Int(e.probeID) < entries.count ? entries[Int(e.probeID)] : nil
    }

    /// The named value an event read through a pointer, if it was read.
    public func value(_ name: String, of e: Event) -> UInt64? {
        guard let entry = entry(e) else { return nil }
        guard let slot = entry.derefSlots[name], e.hasDeref(slot) else { return entry.constants[name] }
        return e.derefs[slot]
    }

    /// The coroutine a USDT event names (its `coroutineFrom`), if it names one.
    public func coroutine(of e: Event) -> UInt64? {
        guard let from = entry(e)?.coroutineFrom else { return nil }
        if from.hasPrefix("arg"), let i = Int(from.dropFirst(3)), i >= 0, i < Event.argCount { return e.args[i] }
        if from.hasPrefix("deref:") { return value(String(from.dropFirst(6)), of: e) }
        return nil
    }

    /// Whether any probe of the role is in the capture.
    public func has(_ role: ProbeRole) -> Bool { entries.contains { $0.role == role } }
}
