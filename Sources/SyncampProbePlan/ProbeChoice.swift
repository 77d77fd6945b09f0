import SyncampCapture
import SyncampProbes

/// Function uprobes or QEMU's USDT probes, and what to do about missing required probes:
/// the collector's choice, given what the binary has and what the user asked for.
///
/// Function probes are the default. USDT probes are used when asked for (`--usdt`), or when
/// a required function probe has no symbol, the binary has QEMU's USDT notes and the user
/// pinned no function with `--offset`. A required probe that is still missing stops the
/// collector unless `--allow-missing`, which traces without it.
///
///     let choice = try ProbeChoice(functions: source, usdt: elf, abi: abi, options: .init(set: .minimal))
///     choice.plan                 // what to attach
///     choice.usdt                 // nil, or why USDT probes were chosen
///     choice.toleratedMissing     // required probes missing under --allow-missing: warn
public struct ProbeChoice: Sendable {
    /// What the user asked for.
    public struct Options: Sendable {
        public var set: ProbeSet
        /// `--usdt`.
        public var forceUSDT: Bool
        /// Whether any `--offset NAME=0xOFFSET` was given: the user means function probes.
        public var pinnedOffsets: Bool
        /// `--allow-missing`.
        public var allowMissing: Bool

        public init(set: ProbeSet = .minimal, forceUSDT: Bool = false, pinnedOffsets: Bool = false, allowMissing: Bool = false) {
            self.set = set
            self.forceUSDT = forceUSDT
            self.pinnedOffsets = pinnedOffsets
            self.allowMissing = allowMissing
        }
    }

    /// Why USDT probes were chosen.
    public enum USDTReason: Sendable, Equatable {
        /// `--usdt`.
        case requested
        /// The binary lacks the symbols of required function probes and has USDT notes.
        case functionSymbolsMissing
    }

    /// Why no plan can be traced.
    public enum Failure: Error, Equatable {
        /// `--usdt`, but the binary has no USDT probes of provider `qemu`.
        case noUSDTProbes
        /// Required probes are missing (without `--allow-missing`); `usdt`: from the USDT plan.
        case missingRequired([Manifest.MissingProbe], usdt: Bool)
    }

    public let plan: ProbePlan
    public let usdt: USDTReason?
    /// Required probes the plan lacks, traced without under `--allow-missing` (the collector warns).
    public let toleratedMissing: [Manifest.MissingProbe]

    public init(functions: some FunctionSymbolLookup, usdt notes: some USDTProbeLookup, abi: QemuABI,
                options: Options) throws(Failure) {
        var plan = ProbePlan(symbols: functions, abi: abi, set: options.set)
        let hasUSDT = notes.usdtProbes.contains { $0.provider == USDTCatalog.provider }
        var reason: USDTReason? = nil
        if options.forceUSDT {
            guard hasUSDT else { throw .noUSDTProbes }
            reason = .requested
        } else if !plan.missingRequired.isEmpty && hasUSDT && !options.pinnedOffsets {
            reason = .functionSymbolsMissing
        }
        if reason != nil { plan = ProbePlan(usdt: notes, set: options.set) }
        let lacking = plan.missingRequired
        if !lacking.isEmpty && !options.allowMissing { throw .missingRequired(lacking, usdt: reason != nil) }
        self.plan = plan
        self.usdt = reason
        self.toleratedMissing = lacking
    }
}
