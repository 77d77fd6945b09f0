#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC, the clock of the events' timestamps (bpf_ktime_get_ns).
enum Clock {
    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
