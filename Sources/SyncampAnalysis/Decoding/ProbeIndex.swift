import SyncampCapture
import SyncampProbes

/// The capture's probes by id, each with what its events carry, resolved once from the manifest:
/// its role, where each value read through a pointer sits (or the constant a USDT probe gives for
/// it), and what its entry point means for a request (`RequestEntry`). `EventDecoder` reads events
/// through it; nothing after the decoder looks a value up by name.
public struct ProbeIndex: Sendable {
    /// Where a named value of an event comes from.
    public enum Source: Sendable, Equatable {
        case absent
        /// `derefs[i]`, when its bit of `deref_ok` is set.
        case deref(Int)
        /// A value the probe gives as a constant (USDT: which cache an id stands for).
        case constant(UInt64)
    }

    /// The values probes read through pointers (ProbeCatalog, USDTCatalog), by their catalog names.
    public struct Values: Sendable {
        public var bytes = Source.absent
        public var depends = Source.absent
        public var dependsOnFlush = Source.absent
        public var dependencyDepends = Source.absent
        public var l2TableCache = Source.absent
        public var refcountBlockCache = Source.absent
        public var format = Source.absent
        public var fd = Source.absent
        public var bs = Source.absent
        public var aioType = Source.absent
        public var coroutine = Source.absent

        init(derefs: [String], constants: [String: UInt64]) {
            func source(_ name: String) -> Source {
                if let i = derefs.firstIndex(of: name) { return .deref(i) }
                return constants[name].map(Source.constant) ?? .absent
            }
            bytes = source("bytes")
            depends = source("depends")
            dependsOnFlush = source("depends_on_flush")
            dependencyDepends = source("dependency_depends")
            l2TableCache = source("l2_table_cache")
            refcountBlockCache = source("refcount_block_cache")
            format = source("format")
            fd = source("fd")
            bs = source("bs")
            aioType = source("aio_type")
            coroutine = source("coroutine")
        }
    }

    /// USDT probes: where an event's coroutine is (manifest `coroutineFrom`).
    public enum CoroutineSource: Sendable, Equatable {
        case none
        /// An argument ("arg0").
        case argument(Int)
        /// A value read through a pointer ("deref:coroutine").
        case value(Source)
        /// The next event on the same thread that names one ("next").
        case nextEvent
    }

    /// One probe, resolved. A class: the decoder looks one up per event, and a reference is
    /// cheaper to hand around than the 230 bytes of the values inline.
    public final class Entry: Sendable {
        public let role: ProbeRole?
        public let symbol: String
        public let isFallback: Bool
        public let values: Values
        public let isUSDT: Bool
        public let coroutineFrom: CoroutineSource
        /// Whether the entry point runs in the request's own coroutine (`RequestEntry`).
        public let runsInRequestCoroutine: Bool
        /// The canonical argument holding the request flags, if the entry takes them.
        public let flagsArgument: Int?

        init(role: ProbeRole?, symbol: String, isFallback: Bool, values: Values, isUSDT: Bool,
             coroutineFrom: CoroutineSource, runsInRequestCoroutine: Bool, flagsArgument: Int?) {
            self.role = role
            self.symbol = symbol
            self.isFallback = isFallback
            self.values = values
            self.isUSDT = isUSDT
            self.coroutineFrom = coroutineFrom
            self.runsInRequestCoroutine = runsInRequestCoroutine
            self.flagsArgument = flagsArgument
        }
    }

    public let entries: [Entry]

    /// The catalog's own spelling of each symbol it probes: a string literal, whose storage is
    /// never reference-counted. Every op keeps the symbol it started at (`GuestOp.entry`), and
    /// the manifest's copy is a heap string: a retain and a release per op and per copy of it.
    private static let catalogSymbols: [String: String] = {
        var d: [String: String] = [:]
        for e in ProbeCatalog.entries { for s in e.symbols { d[s] = s } }
        return d
    }()

    public init(manifest: Manifest) {
        entries = manifest.probes.sorted { $0.id < $1.id }.map { p in
            let values = Values(derefs: p.derefs, constants: p.constants ?? [:])
            var from = CoroutineSource.none
            switch p.coroutineFrom {
            case "next"?: from = .nextEvent
            case let f? where f.hasPrefix("arg"):
                if let i = Int(f.dropFirst(3)), i >= 0, i < Event.argCount { from = .argument(i) }
            case let f? where f.hasPrefix("deref:"):
                let name = String(f.dropFirst(6))
                from = .value(Values(derefs: p.derefs, constants: p.constants ?? [:]).source(named: name))
            default: break
            }
            return Entry(role: ProbeRole(rawValue: p.role), symbol: Self.catalogSymbols[p.symbol] ?? p.symbol, isFallback: p.isFallback, values: values,
                         isUSDT: p.table == "usdt", coroutineFrom: from,
                         runsInRequestCoroutine: RequestEntry.runsInRequestCoroutine(p.symbol),
                         flagsArgument: RequestEntry.flagsArgument(p.symbol))
        }
        isUSDT = entries.contains { $0.isUSDT }
    }

    /// Whether the capture's probes are QEMU's USDT probes (dtrace trace backend), not function uprobes.
    public let isUSDT: Bool

    /// The entry of a uprobe event, if its probe id is in the manifest.
    public func entry(_ e: Event) -> Entry? {
        entry(id: e.probeID)
    }

    /// The entry of a uprobe's probe id, if the manifest has one.
    func entry(id: UInt16) -> Entry? {
        Int(id) < entries.count ? entries[Int(id)] : nil
    }

    /// The function a probe is on ("" for an id the manifest does not describe), read in place:
    /// `entry(id:)` hands the entry out retained, an atomic pair per call.
    func symbol(id: UInt16) -> String {
        Int(id) < entries.count ? entries[Int(id)].symbol : ""
    }

    /// `read(_:of:)` of an event in place.
    @inline(__always)
    static func read(_ source: Source, of e: UnsafePointer<Event>) -> UInt64? {
        switch source {
        case .absent: return nil
        case let .deref(i): return e.pointee.hasDeref(i) ? e.pointee.derefs[i] : nil
        case let .constant(v): return v
        }
    }

    /// The value `source` names in `e`, if the event carries it.
    @inline(__always)
    public static func read(_ source: Source, of e: Event) -> UInt64? {
        withUnsafePointer(to: e) { read(source, of: $0) }
    }

    /// The coroutine a USDT event names (its `coroutineFrom`), if it names one.
    public func coroutine(of e: Event) -> UInt64? {
        switch entry(e)?.coroutineFrom ?? .none {
        case let .argument(i): return e.args[i]
        case let .value(s): return Self.read(s, of: e)
        case .none, .nextEvent: return nil
        }
    }

    /// Whether any probe of the role is in the capture.
    public func has(_ role: ProbeRole) -> Bool { entries.contains { $0.role == role } }
}

extension ProbeIndex.Values {
    /// The source of a value by its catalog name (the manifest's `coroutineFrom: "deref:NAME"`).
    func source(named name: String) -> ProbeIndex.Source {
        switch name {
        case "bytes": return bytes
        case "depends": return depends
        case "depends_on_flush": return dependsOnFlush
        case "dependency_depends": return dependencyDepends
        case "l2_table_cache": return l2TableCache
        case "refcount_block_cache": return refcountBlockCache
        case "format": return format
        case "fd": return fd
        case "bs": return bs
        case "aio_type": return aioType
        case "coroutine": return coroutine
        default: return .absent
        }
    }
}
