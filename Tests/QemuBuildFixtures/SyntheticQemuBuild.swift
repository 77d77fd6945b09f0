import SyncampELF
import SyncampProbePlan
import SyncampProbes

/// A QEMU build as the probe plan sees it, without a binary: which of the catalog's
/// functions it has (and in which symbol table), and which USDT probes.
///
/// The builds below are what the testbed's real binaries show of the catalog
/// (SyntheticBuildTests plans both and compares), so a test can plan against "a stock
/// Debian qemu-io" on any machine, and a catalog change shows in every plan made from them:
///
///     let plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock72, set: .detail)
public struct SyntheticQemuBuild: FunctionSymbolLookup, USDTProbeLookup, Sendable {
    /// The functions the build has, by name, and the table each is in.
    public var functions: [String: ELFSymbol.Table]
    public var usdtProbes: [USDTProbe]
    /// Whether the build has a full symbol table (`.symtab`).
    public var hasSymtab: Bool

    public init(functions: [String: ELFSymbol.Table], usdtProbes: [USDTProbe] = [], hasSymtab: Bool) {
        self.functions = functions
        self.usdtProbes = usdtProbes
        self.hasSymtab = hasSymtab
    }

    /// Where the synthetic file is loaded: file offset = address - `loadBase`.
    public static let loadBase: UInt64 = 0x40_0000

    /// Every function the catalog names, in catalog order (which gives each a stable address).
    public static var catalogFunctions: [String] {
        var seen = Set<String>()
        return ProbeCatalog.entries.flatMap(\.symbols).filter { seen.insert($0).inserted }
    }

    /// The catalog's functions that are `static` in QEMU's sources, so a stripped build does
    /// not export them (`nm -D /usr/bin/qemu-io` of Debian 12's qemu-utils 1:7.2+dfsg-7+deb12u18
    /// and of Debian's 10.0 lack exactly these).
    public static let staticFunctions: Set<String> = [
        "blk_co_do_pwritev_part", "qcow2_co_pwritev_part", "qcow2_cache_entry_flush", "raw_co_flush_to_disk",
        "handle_aiocb_flush", "qcow2_co_create", "vmdk_co_pwritev", "vmdk_L2update", "qcow2_co_check_locked",
        "qcow2_make_empty", "update_ext_header_and_dir", "update_ext_header_and_dir_in_place",
    ]

    /// QEMU built with symbols (the testbed's qemu-io): every function the catalog names, in `.symtab`.
    public static let fullSymbolTable = SyntheticQemuBuild(
        functions: Dictionary(uniqueKeysWithValues: catalogFunctions.map { ($0, .symtab) }), hasSymtab: true)

    /// A stripped, stock build (Debian's qemu-io): its exported functions only, in `.dynsym`.
    public static let debianStock = SyntheticQemuBuild(
        functions: Dictionary(uniqueKeysWithValues: catalogFunctions.filter { !staticFunctions.contains($0) }.map { ($0, .dynsym) }),
        hasSymtab: false)

    /// QEMU built with the dtrace trace backend and stripped (the testbed's dtrace qemu-io):
    /// no functions, a USDT probe for every trace event of the catalog, under `release`'s names
    /// (QEMU 10.0 renamed thread_pool_submit to thread_pool_submit_aio).
    public static func dtrace(_ release: DTraceRelease = .qemu72) -> SyntheticQemuBuild {
        let probes = USDTCatalog.entries.enumerated().map { i, u in
            usdtProbe(release == .qemu72 ? u.event : USDTCatalog.names(u).last!, arity: u.arity, index: i)
        }
        return SyntheticQemuBuild(functions: [:], usdtProbes: probes, hasSymtab: false)
    }

    /// Which release's trace-event names a dtrace build has.
    public enum DTraceRelease: Sendable { case qemu72, qemu100 }

    /// One USDT probe of provider qemu with `arity` 8-byte register arguments.
    public static func usdtProbe(_ name: String, arity: Int, index: Int) -> USDTProbe {
        let registers = ["%rbx", "%rbp", "%r12", "%r13", "%r14", "%r15"]
        return USDTProbe(provider: USDTCatalog.provider, name: name, address: 0x4a_0000 + UInt64(index) * 0x100, semaphore: 0,
                         arguments: (0..<arity).map { "8@\(registers[$0 % registers.count])" }.joined(separator: " "))
    }

    /// The same build without these functions.
    public func without(_ names: String...) -> SyntheticQemuBuild {
        var b = self
        for n in names { b.functions[n] = nil }
        return b
    }

    /// The same build with these USDT probes instead of its own.
    public func with(usdt probes: [USDTProbe]) -> SyntheticQemuBuild {
        var b = self
        b.usdtProbes = probes
        return b
    }

    public func function(named name: String) -> (symbol: ELFSymbol, fileOffset: UInt64)? {
        guard let table = functions[name] else { return nil }
        let index = UInt64(Self.catalogFunctions.firstIndex(of: name) ?? Self.catalogFunctions.count)
        let address = 0x6a_0000 + index * 0x340
        return (ELFSymbol(name: name, address: address, size: 0x200, isGlobal: table == .dynsym, table: table), address - Self.loadBase)
    }

    public func fileOffset(forAddress address: UInt64) -> UInt64? {
        address >= Self.loadBase ? address - Self.loadBase : nil
    }
}
