import SyncampCapture

/// What the analysis counts of its own probes to tell when they read the wrong places.
///
/// A probe whose layout does not match the traced QEMU (an unknown version, a table that
/// is wrong for it) does not fail: it reads other fields and every host sync ends up
/// unattributed or under a wrong cause. These counts catch that, and `Analysis.warnings`
/// names the likely cause: the QEMU version, where its layouts came from, and the probe.
public struct ProbeSelfCheck: Sendable, Equatable {
    /// `thread_pool_submit_aio` events, those whose job was a flush (`aio_type` QEMU_AIO_FLUSH),
    /// and those whose `aio_type` no file-posix job has. Other thread-pool users pass other
    /// structs, so a few of the last are normal; most of them are not.
    public var poolSubmits = 0
    public var poolFlushSubmits = 0
    public var poolImpossibleAIOTypes = 0
    /// Values no QEMU can have where the probe reads them, per probe role: the fd of a flush
    /// job below 0 or above 2^24.
    public var impossibleValues: [ProbeRole: Int] = [:]

    public init() {}

    /// Whether `aio_type` (RawPosixAIOData.aio_type, include/block/raw-aio.h: QEMU_AIO_* bits below 0x1000) is possible.
    static func isPossibleAIOType(_ v: UInt64) -> Bool { v & 0xffff_ffff != 0 && v & 0xffff_ffff < 0x1000 }

    /// Whether an fd read through a pointer is possible.
    static func isPossibleFd(_ v: UInt64) -> Bool { v & 0xffff_ffff < 1 << 24 }

    /// The warnings these counts call for, naming `qemu` (version and layout source) and the probe.
    func warnings(hostSyncs: Int, unattributed: Int, qemu: String) -> [String] {
        var w: [String] = []
        if poolSubmits >= 4, poolImpossibleAIOTypes * 2 > poolSubmits {
            w.append("thread_pool_submit_aio read \(poolImpossibleAIOTypes) of \(poolSubmits) jobs with an aio_type no file-posix job has: its arguments are not where syncamp read them for \(qemu); the causes cannot be trusted")
        } else if poolSubmits >= 4, poolFlushSubmits == 0, hostSyncs > 0 {
            w.append("thread_pool_submit_aio fired \(poolSubmits) times and never carried a flush job (aio_type \(QemuABI.aioFlush)) although \(hostSyncs) host syncs were made: its arguments are not where syncamp read them for \(qemu); the causes cannot be trusted")
        }
        for (role, n) in impossibleValues.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            w.append("probe \(role.rawValue) read \(n) impossible file descriptors: its layout does not match \(qemu); the causes that depend on it cannot be trusted")
        }
        if hostSyncs > 0, unattributed > 1, unattributed * 100 > hostSyncs * 3 {
            w.append("\(unattributed) of \(hostSyncs) host syncs (\(unattributed * 100 / hostSyncs)%) could not be placed under a request: more than a few percent points at probes that read the wrong places for \(qemu) or at missing probes (see above)")
        }
        return w
    }
}
