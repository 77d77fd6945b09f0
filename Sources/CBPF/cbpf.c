/* Intentionally empty: CBPF is header-only (see include/cbpf.h), so that
 * importing it links nothing. SwiftPM needs one source file per C target. */
