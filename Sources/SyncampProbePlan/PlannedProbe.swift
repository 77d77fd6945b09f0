import SyncampELF
import SyncampProbes

/// One probe the collector attaches: the catalog entry it serves, the symbol (or USDT
/// event) that serves it, and where in the file it sits.
public struct PlannedProbe: Sendable {
    public var entry: CatalogEntry
    public var symbol: ELFSymbol
    public var fileOffset: UInt64
    /// Served by an exported equivalent rather than the entry's preferred symbol.
    public var isFallback: Bool
    /// A USDT probe: the trace event attached at every site, and where its arguments go.
    public var usdtEvent: String? = nil
    public var usdtArgs: [UInt8?] = []
    /// A function probe whose parameters are not in its role's canonical order in this build:
    /// the argument register of each canonical argument (QemuABI.argumentMap); nil: in order.
    public var argMap: [UInt8?]? = nil
    /// Where the probe sits, when it is not the function's entry (see ProbeSite): the
    /// entry's file offset stays in `entryOffset`, `fileOffset` is the site's.
    public var entryOffset: UInt64? = nil
    /// The instruction at the site and what a hit on it costs (nil: not decoded).
    public var siteInstruction: String? = nil
    public var cost: String? = nil
    public var constants: [String: UInt64] = [:]
    public var coroutineFrom: String? = nil

    public init(entry: CatalogEntry, symbol: ELFSymbol, fileOffset: UInt64, isFallback: Bool,
                usdtEvent: String? = nil, usdtArgs: [UInt8?] = [], argMap: [UInt8?]? = nil,
                constants: [String: UInt64] = [:], coroutineFrom: String? = nil) {
        self.entry = entry
        self.symbol = symbol
        self.fileOffset = fileOffset
        self.isFallback = isFallback
        self.usdtEvent = usdtEvent
        self.usdtArgs = usdtArgs
        self.argMap = argMap
        self.constants = constants
        self.coroutineFrom = coroutineFrom
    }

    /// Moves the probe `offsetFromEntry` bytes past the function's entry (0: stays there),
    /// recording the instruction at the site and what a hit on it costs.
    public mutating func place(offsetFromEntry: UInt64, instruction: String, cost: String) {
        if offsetFromEntry != 0 {
            entryOffset = fileOffset
            fileOffset += offsetFromEntry
        }
        siteInstruction = instruction
        self.cost = cost
    }
}
