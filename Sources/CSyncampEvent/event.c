/* Intentionally empty: CSyncampEvent is header-only (include/syncamp.h, the event records
 * shared with the BPF programs), so reading captures needs neither libbpf nor its headers.
 * SwiftPM needs one source file per C target. */
