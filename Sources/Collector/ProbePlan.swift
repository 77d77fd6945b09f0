import SyncampCapture
import SyncampELF

/// Which symbol serves each catalog probe in one binary, and which probes are missing.
struct ProbePlan {
    struct Planned {
        var entry: CatalogEntry
        var symbol: ELFSymbol
        var fileOffset: UInt64
        var isFallback: Bool
    }

    var planned: [Planned] = []
    var missing: [Manifest.MissingProbe] = []
    /// Entries left out on purpose because another probe covers them.
    var skipped: [Manifest.MissingProbe] = []
    let set: ProbeSet

    /// Resolves every catalog entry against the binary: the preferred symbol where it exists, else an exported equivalent.
    init(symbols: SymbolSource, catalog: [CatalogEntry] = ProbeCatalog.entries, set: ProbeSet = .detail) {
        self.set = set
        for entry in catalog {
            if let role = entry.onlyWhenMissing, let covering = planned.first(where: { $0.entry.role == role }) {
                skipped.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: [],
                                                     reason: "not needed: \(covering.symbol.name) covers it"))
                continue
            }
            if set == .minimal, let reason = leftOutOfMinimal(entry) {
                skipped.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: [], reason: reason))
                continue
            }
            if let other = entry.onlyWhenFallbackFor,
               let covering = planned.first(where: { $0.entry.role == other }), !covering.isFallback {
                skipped.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: [],
                                                     reason: "not needed: \(covering.symbol.name) covers it"))
                continue
            }
            var found = false
            for (i, name) in entry.symbols.enumerated() {
                guard let (sym, off) = symbols.function(named: name) else { continue }
                planned.append(Planned(entry: entry, symbol: sym, fileOffset: off, isFallback: i > 0))
                found = true
                break
            }
            if !found {
                missing.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: entry.symbols,
                                                     reason: "no such function in the binary: \(entry.whenMissing)"))
            }
        }
    }

    /// Why the minimal set leaves this entry out, or nil when it attaches it.
    private func leftOutOfMinimal(_ entry: CatalogEntry) -> String? {
        switch entry.inMinimalSet {
        case .always:
            return nil
        case .detailOnly:
            return "left out of the minimal probe set (--detail attaches it)"
        case let .whenNoneOf(roles):
            guard let covering = planned.first(where: { roles.contains($0.entry.role) }) else { return nil }
            return "left out of the minimal probe set: \(covering.symbol.name) covers it (--detail attaches it)"
        }
    }

    /// The required probes that are missing.
    func missingRequired(catalog: [CatalogEntry] = ProbeCatalog.entries) -> [Manifest.MissingProbe] {
        let required = Set(catalog.filter(\.required).map(\.role.rawValue))
        return missing.filter { required.contains($0.role) }
    }

    /// The manifest's description of the planned probes; index = probe id = attach cookie.
    var manifestProbes: [Manifest.Probe] {
        planned.enumerated().map { id, p in
            Manifest.Probe(id: id, role: p.entry.role.rawValue, symbol: p.symbol.name, table: p.symbol.table.rawValue,
                           address: p.symbol.address, fileOffset: p.fileOffset, isFallback: p.isFallback,
                           derefs: p.entry.derefs.map(\.name))
        }
    }
}
