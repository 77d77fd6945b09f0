import SyncampCapture
import SyncampELF
import SyncampProbes

extension ProbePlan {
    /// Plans QEMU's USDT probes (a build with the dtrace trace backend) instead of function uprobes:
    /// each catalog event under whichever of its names the binary has, checked against its arity.
    public init(usdt binary: some USDTProbeLookup, entries: [USDTEntry] = USDTCatalog.entries, set: ProbeSet = .minimal) {
        self.set = set
        requiredRoles = Set(entries.filter(\.required).map(\.role.rawValue))
        let qemu = binary.usdtProbes.filter { $0.provider == USDTCatalog.provider }
        for u in entries {
            let entry = CatalogEntry(role: u.role, symbols: ["\(USDTCatalog.provider):\(u.event)"], derefs: u.derefs,
                                     required: u.required, whenMissing: u.whenMissing)
            if set == .minimal && !u.inMinimalSet {
                skipped.append(Manifest.MissingProbe(role: u.role.rawValue, symbolsTried: entry.symbols,
                                                     reason: "left out of the minimal probe set (--detail attaches it)"))
                continue
            }
            // The event under whichever of its names this build has (QEMU renames events).
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
            // One symbol stands for every site of the event; its size counts them.
            let sym = ELFSymbol(name: "\(USDTCatalog.provider):\(name)", address: first.address, size: UInt64(sites.count), isGlobal: true, table: .usdt)
            planned.append(PlannedProbe(entry: entry, symbol: sym, fileOffset: off, isFallback: false,
                                        usdtEvent: name, usdtArgs: u.args, constants: u.constants, coroutineFrom: u.coroutineFrom))
        }
    }
}
