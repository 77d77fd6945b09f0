/// Function symbols of both tables, indexed by name.
///
/// Same-named symbols are chained through `next` (newest first) instead of
/// kept in per-name arrays: one dictionary entry and no allocation per symbol,
/// which keeps debug builds fast on tables with tens of thousands of entries.
struct SymbolIndex: Sendable {
    /// `.symtab` functions first, then `.dynsym`, each in table order, without
    /// repeats of the same name and address.
    private(set) var all: [ELFSymbol] = []
    private var newest: [String: Int] = [:]
    private var next: [Int] = []

    /// Indexes `symtab` then `dynsym`.
    init(symtab: [ELFSymbol], dynsym: [ELFSymbol]) {
        all = symtab
        all.reserveCapacity(symtab.count + dynsym.count)
        next.reserveCapacity(symtab.count + dynsym.count)
        newest.reserveCapacity(symtab.count + dynsym.count)
        for i in all.indices { link(i) }
        for symbol in dynsym where !contains(symbol) {
            all.append(symbol)
            link(all.count - 1)
        }
    }

    /// Puts `all[i]` at the head of its name's chain.
    private mutating func link(_ i: Int) {
        next.append(newest.updateValue(i, forKey: all[i].name) ?? -1)
    }

    /// Whether a symbol with the same name and address is indexed already.
    private func contains(_ symbol: ELFSymbol) -> Bool {
        var i = newest[symbol.name] ?? -1
        while i >= 0 {
            if all[i].address == symbol.address { return true }
            i = next[i]
        }
        return false
    }

    /// The preferred function called `name`: from `.symtab` if it has one,
    /// else from `.dynsym`; within the table, the first global one, else the first.
    func function(named name: String) -> ELFSymbol? {
        var best: ELFSymbol?
        var i = newest[name] ?? -1
        while i >= 0 {  // newest first, so a later match is an earlier symbol
            if rank(all[i]) >= best.map(rank) ?? 0 { best = all[i] }
            i = next[i]
        }
        return best
    }

    /// Orders candidates: `.symtab` over `.dynsym`, then global over local.
    private func rank(_ symbol: ELFSymbol) -> Int {
        (symbol.table == .symtab ? 2 : 0) + (symbol.isGlobal ? 1 : 0)
    }
}
