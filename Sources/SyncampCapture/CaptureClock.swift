#if canImport(Glibc)
import Glibc
#endif

/// The clocks a capture records: CLOCK_MONOTONIC (as bpf_ktime_get_ns, the events' timestamps) and CLOCK_REALTIME.
public enum CaptureClock {
    public static func monotonicNs() -> UInt64 { read(CLOCK_MONOTONIC) }
    public static func realtimeNs() -> UInt64 { read(CLOCK_REALTIME) }

    private static func read(_ id: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(id, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
