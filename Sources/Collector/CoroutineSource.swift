import CBPF
import SyncampELF

/// How the BPF side learns which QEMU coroutine is running on a thread.
///
/// QEMU runs many guest requests as coroutines on one thread, so the thread
/// id does not say which request an event belongs to; the coroutine does.
/// With a symbol table the collector reads QEMU's thread-local
/// `co_tls_current` at every probe (no extra probe hits); on stripped
/// binaries it probes the exported `qemu_coroutine_switch` and keeps the
/// running coroutine per thread in a BPF map.
enum CoroutineSource {
    /// `co_tls_current` at this offset from the thread pointer.
    case threadLocal(offset: Int64)
    /// A uprobe on `qemu_coroutine_switch` at this file offset.
    case switchProbe(fileOffset: UInt64)
    case none

    /// Picks the cheapest source the binary allows.
    init(symbols: SymbolSource) {
        if let offset = symbols.threadPointerOffset(ofThreadLocal: "co_tls_current") {
            self = .threadLocal(offset: offset)
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
        case let .threadLocal(offset): return "tls co_tls_current at fs\(offset >= 0 ? "+" : "")\(offset)"
        case .switchProbe: return "uprobe qemu_coroutine_switch"
        case .none: return "none"
        }
    }
}
