import SyncampELF

/// The functions of the binary the probes attach to, as the plan looks them up.
///
/// `SymbolSource` (the binary, its debug file, `--offset`) is the collector's; tests
/// give a list of names instead, so the plan runs without a binary:
///
///     let plan = ProbePlan(symbols: source, abi: .qemu72, set: .minimal)
public protocol FunctionSymbolLookup {
    /// The function's symbol and the file offset its probe attaches at, or nil when the binary lacks it.
    func function(named name: String) -> (symbol: ELFSymbol, fileOffset: UInt64)?
}

/// The USDT probes (`.note.stapsdt`) of the binary the probes attach to, as the plan reads them.
public protocol USDTProbeLookup {
    var usdtProbes: [USDTProbe] { get }
    /// Where a virtual address lies in the file (uprobes attach at file offsets).
    func fileOffset(forAddress address: UInt64) -> UInt64?
}

extension SymbolSource: FunctionSymbolLookup {}
extension ELFFile: USDTProbeLookup {}
