#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM while `live` or `replay` runs, so that they end cleanly (and the collector with them).
nonisolated(unsafe) private var interruptSignal: sig_atomic_t = 0

enum Interrupt {
    static func install() {
        signal(SIGINT) { sig in interruptSignal = sig }
        signal(SIGTERM) { sig in interruptSignal = sig }
    }

    /// The signal received, or 0.
    static var received: Int32 { Int32(interruptSignal) }
}
