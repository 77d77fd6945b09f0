#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM: the poll loop checks it and ends the capture cleanly.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

enum StopSignal {
    /// Installs the handlers; a second signal of the same kind is not special (the loop ends within one poll).
    static func install() {
        signal(SIGINT) { sig in stopSignal = sig }
        signal(SIGTERM) { sig in stopSignal = sig }
    }

    /// The signal that asked to stop, or 0.
    static var received: Int32 { Int32(stopSignal) }
}
