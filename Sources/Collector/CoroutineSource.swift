import CSyncampEvent
import SyncampELF

/// How the BPF side learns which QEMU coroutine is running on a thread.
///
/// QEMU runs many guest requests as coroutines on one thread, so the thread
/// id does not say which request an event belongs to; the coroutine does.
/// The collector reads QEMU's thread-local `co_tls_current` at every probe (no
/// extra probe hits): its offset from the thread pointer comes from the symbol
/// table, or, in stripped binaries, from the machine code of the exported
/// `qemu_coroutine_self`. Only where neither gives it does it probe the exported
/// `qemu_coroutine_switch` (a hit on every coroutine switch) and keep the running
/// coroutine per thread in a BPF map.
enum CoroutineSource {
    /// `co_tls_current` at this offset from the thread pointer; `fromCode`: read from
    /// qemu_coroutine_self's machine code (no TLS symbol).
    case threadLocal(offset: Int64, fromCode: Bool)
    /// A uprobe on `qemu_coroutine_switch` at this file offset.
    case switchProbe(fileOffset: UInt64)
    case none

    /// Picks the cheapest source the binary allows.
    init(symbols: SymbolSource, sites: ProbeSites?) {
        if let offset = symbols.threadPointerOffset(ofThreadLocal: "co_tls_current") {
            self = .threadLocal(offset: offset, fromCode: false)
        } else if let sites, let (sym, _) = symbols.function(named: "qemu_coroutine_self"),
                  let offset = sites.coroutineTLS(selfFunction: sym) {
            self = .threadLocal(offset: offset, fromCode: true)
        } else if let (_, off) = symbols.function(named: "qemu_coroutine_switch") {
            self = .switchProbe(fileOffset: off)
        } else {
            self = .none
        }
    }

    /// The `enum syncamp_co_mode` value for the BPF program.
    var mode: UInt32 {
        switch self {
        case .threadLocal: return UInt32(SYNCAMP_CO_TLS.rawValue)
        case .switchProbe: return UInt32(SYNCAMP_CO_SWITCH.rawValue)
        case .none: return UInt32(SYNCAMP_CO_NONE.rawValue)
        }
    }

    /// What the manifest says about it.
    var manifestDescription: String {
        switch self {
        case let .threadLocal(offset, fromCode):
            return "tls co_tls_current at fs\(offset >= 0 ? "+" : "")\(offset)" + (fromCode ? " (from qemu_coroutine_self's code)" : "")
        case .switchProbe: return "uprobe qemu_coroutine_switch (no TLS symbol, and qemu_coroutine_self's code did not give it)"
        case .none: return "none"
        }
    }
}
