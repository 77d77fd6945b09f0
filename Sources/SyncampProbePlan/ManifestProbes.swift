import SyncampCapture

extension ProbePlan {
    /// The manifest's description of the planned probes; index = probe id = attach cookie.
    public var manifestProbes: [Manifest.Probe] {
        planned.enumerated().map { id, p in
            Manifest.Probe(id: id, role: p.entry.role.rawValue, symbol: p.symbol.name, table: p.symbol.table.rawValue,
                           address: p.symbol.address, fileOffset: p.fileOffset, isFallback: p.isFallback,
                           derefs: p.entry.derefs.map(\.name),
                           usdtArgs: p.usdtEvent == nil ? nil : p.usdtArgs.map { $0.map(Int.init) ?? -1 },
                           constants: p.constants.isEmpty ? nil : p.constants, coroutineFrom: p.coroutineFrom,
                           entryOffset: p.entryOffset, siteInstruction: p.siteInstruction, cost: p.cost)
        }
    }

    /// The manifest's `probeSet`: "usdt", "minimal" or "detail".
    public var manifestProbeSet: String { isUSDT ? "usdt" : set.rawValue }
}
