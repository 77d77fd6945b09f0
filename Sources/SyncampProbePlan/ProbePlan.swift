import SyncampCapture
import SyncampProbes

/// Which symbol serves each catalog probe in one binary, and which probes are missing.
///
/// The plan is the collector's policy, kept apart from libbpf so that it runs (and is
/// tested) without a binary or privileges: the preferred symbol of each entry, else an
/// exported equivalent (a stock build's); the minimal set or every entry (`--detail`);
/// entries left out because another probe covers them.
///
///     let plan = ProbePlan(symbols: source, abi: abi, set: .minimal)
///     plan.planned      // what to attach, in probe-id order
///     plan.missing      // entries no symbol serves, with what the report loses
public struct ProbePlan: Sendable {
    public internal(set) var planned: [PlannedProbe] = []
    public internal(set) var missing: [Manifest.MissingProbe] = []
    /// Entries left out on purpose because another probe covers them, or the set leaves them out.
    public internal(set) var skipped: [Manifest.MissingProbe] = []
    public let set: ProbeSet
    /// The roles the report needs for correct totals (CatalogEntry.required, USDTEntry.required).
    public let requiredRoles: Set<String>

    /// Resolves every catalog entry against the binary: the preferred symbol where it exists, else an
    /// exported equivalent; `abi` says where each function's parameters are in this build.
    public init(symbols: some FunctionSymbolLookup, abi: QemuABI = .qemu72, set: ProbeSet = .detail) {
        self.set = set
        let catalog = ProbeCatalog.entries(abi)
        requiredRoles = Set(catalog.filter(\.required).map(\.role.rawValue))
        for entry in catalog {
            if let reason = whyLeftOut(entry) {
                skipped.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: [], reason: reason))
                continue
            }
            guard let (i, name) = entry.symbols.enumerated().first(where: { symbols.function(named: $0.element) != nil }),
                  let (sym, off) = symbols.function(named: name) else {
                missing.append(Manifest.MissingProbe(role: entry.role.rawValue, symbolsTried: entry.symbols,
                                                     reason: "no such function in the binary: \(entry.whenMissing)"))
                continue
            }
            let map = abi.argumentMap(name)?.map { $0.map(UInt8.init) }
            planned.append(PlannedProbe(entry: entry, symbol: sym, fileOffset: off, isFallback: i > 0, argMap: map))
        }
    }

    /// Why the plan leaves `entry` out given what it planned so far, or nil when it attaches it.
    private func whyLeftOut(_ entry: CatalogEntry) -> String? {
        if let role = entry.onlyWhenMissing, let covering = planned.first(where: { $0.entry.role == role }) {
            return "not needed: \(covering.symbol.name) covers it"
        }
        if set == .minimal, let reason = leftOutOfMinimal(entry) {
            return reason
        }
        if let other = entry.onlyWhenFallbackFor,
           let covering = planned.first(where: { $0.entry.role == other }), !covering.isFallback {
            return "not needed: \(covering.symbol.name) covers it"
        }
        return nil
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

    /// Whether this plan attaches USDT probes.
    public var isUSDT: Bool { planned.contains { $0.usdtEvent != nil } }

    /// The required probes that are missing.
    public var missingRequired: [Manifest.MissingProbe] {
        missing.filter { requiredRoles.contains($0.role) }
    }

    /// The exported equivalents the plan fell back to (a stock build's).
    public var fallbacks: [String] { planned.filter(\.isFallback).map(\.symbol.name) }

    /// Places each function probe at the site `site` chooses (the offset past the function's entry,
    /// the instruction there, its cost; nil keeps it at its entry, undecoded). USDT probes sit on
    /// nops, which the kernel emulates.
    public mutating func placeSites(_ site: (PlannedProbe) -> (offsetFromEntry: UInt64, instruction: String, cost: String)?) {
        for i in planned.indices {
            if planned[i].usdtEvent != nil {
                planned[i].place(offsetFromEntry: 0, instruction: "nop", cost: "emulated")
                continue
            }
            guard let s = site(planned[i]) else { continue }
            planned[i].place(offsetFromEntry: s.offsetFromEntry, instruction: s.instruction, cost: s.cost)
        }
    }
}
