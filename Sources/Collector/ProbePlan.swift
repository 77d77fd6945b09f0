import SyncampProbes
import SyncampCapture
import SyncampELF

/// Which symbol serves each catalog probe in one binary, and which probes are missing.
struct ProbePlan {
    struct Planned {
        var entry: CatalogEntry
        var symbol: ELFSymbol
        var fileOffset: UInt64
        var isFallback: Bool
        /// A USDT probe: the trace event attached at every site, and where its arguments go.
        var usdtEvent: String? = nil
        var usdtArgs: [UInt8?] = []
        /// A function probe whose parameters are not in its role's canonical order in this build:
        /// the argument register of each canonical argument (QemuABI.argumentMap); nil: in order.
        var argMap: [UInt8?]? = nil
        /// Where the probe sits, when it is not the function's entry (see ProbeSite): the
        /// entry's file offset stays in `entryOffset`, `fileOffset` is the site's.
        var entryOffset: UInt64? = nil
        /// The instruction at the site and what a hit on it costs (nil: not decoded).
        var siteInstruction: String? = nil
        var cost: String? = nil
        var constants: [String: UInt64] = [:]
        var coroutineFrom: String? = nil
    }

    var planned: [Planned] = []
    var missing: [Manifest.MissingProbe] = []
    /// Entries left out on purpose because another probe covers them.
    var skipped: [Manifest.MissingProbe] = []
    let set: ProbeSet

    /// Resolves every catalog entry against the binary: the preferred symbol where it exists, else an
    /// exported equivalent; `abi` says where each function's parameters are in this build.
    init(symbols: SymbolSource, abi: QemuABI = .qemu72, set: ProbeSet = .detail) {
        self.set = set
        let catalog = ProbeCatalog.entries(abi)
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
                let map = abi.argumentMap(name)?.map { $0.map(UInt8.init) }
                planned.append(Planned(entry: entry, symbol: sym, fileOffset: off, isFallback: i > 0, argMap: map))
                found = true
                break
            }
            if !found {
                missing.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: entry.symbols,
                                                     reason: "no such function in the binary: \(entry.whenMissing)"))
            }
        }
    }

    /// Plans QEMU's USDT probes (dtrace trace backend) instead of function uprobes.
    init(usdt binary: ELFFile, entries: [USDTEntry] = USDTCatalog.entries, set: ProbeSet = .minimal) {
        self.set = set
        for u in entries {
            let entry = CatalogEntry(role: u.role, symbols: ["\(USDTCatalog.provider):\(u.event)"], derefs: u.derefs,
                                     required: u.required, whenMissing: u.whenMissing)
            if set == .minimal && !u.inMinimalSet {
                skipped.append(Manifest.MissingProbe(role: u.role.rawValue, symbolsTried: entry.symbols,
                                                     reason: "left out of the minimal probe set (--detail attaches it)"))
                continue
            }
            // The event under whichever of its names this build has (QEMU renames events).
            let qemu = binary.usdtProbes.filter { $0.provider == USDTCatalog.provider }
            let name = USDTCatalog.names(u).first { n in qemu.contains { $0.name == n } } ?? u.event
            let sites = qemu.filter { $0.name == name }
            guard let first = sites.first, let off = binary.fileOffset(forAddress: first.address) else {
                missing.append(Manifest.MissingProbe(role: u.role.rawValue, symbolsTried: USDTCatalog.names(u).map { "\(USDTCatalog.provider):\($0)" },
                                                     reason: "no such USDT probe in the binary: \(u.whenMissing)"))
                continue
            }
            guard first.argumentCount == u.arity else {
                missing.append(Manifest.MissingProbe(role: u.role.rawValue, symbolsTried: ["\(USDTCatalog.provider):\(name)"],
                                                     reason: "the binary's \(name) has \(first.argumentCount) arguments, not the \(u.arity) syncamp reads (another QEMU version's event): \(u.whenMissing)"))
                continue
            }
            let sym = ELFSymbol(name: "\(USDTCatalog.provider):\(name)", address: first.address, size: UInt64(sites.count), isGlobal: true, table: .usdt)
            planned.append(Planned(entry: entry, symbol: sym, fileOffset: off, isFallback: false,
                                   usdtEvent: name, usdtArgs: u.args, constants: u.constants, coroutineFrom: u.coroutineFrom))
        }
    }

    /// Moves every function probe to its cheapest site (`atEntry`: keep them at their entries),
    /// recording the instruction there and its cost. USDT probes sit on nops the kernel emulates.
    mutating func placeSites(_ sites: ProbeSites, abi: QemuABI, atEntry: Bool) {
        for i in planned.indices {
            if planned[i].usdtEvent != nil { planned[i].cost = "emulated"; planned[i].siteInstruction = "nop"; continue }
            let arguments = abi.parameters[planned[i].symbol.name]?.count ?? 6
            guard let site = sites.site(for: planned[i], arguments: arguments) else { continue }
            if atEntry || site.offsetFromEntry == 0 {
                planned[i].siteInstruction = site.entryInstruction
                planned[i].cost = site.entryCost.rawValue
                continue
            }
            planned[i].entryOffset = planned[i].fileOffset
            planned[i].fileOffset += site.offsetFromEntry
            planned[i].siteInstruction = site.instruction
            planned[i].cost = site.cost.rawValue
        }
    }

    /// Whether this plan attaches USDT probes.
    var isUSDT: Bool { planned.contains { $0.usdtEvent != nil } }

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
                           derefs: p.entry.derefs.map(\.name),
                           usdtArgs: p.usdtEvent == nil ? nil : p.usdtArgs.map { $0.map(Int.init) ?? -1 },
                           constants: p.constants.isEmpty ? nil : p.constants, coroutineFrom: p.coroutineFrom,
                           entryOffset: p.entryOffset, siteInstruction: p.siteInstruction, cost: p.cost)
        }
    }
}
