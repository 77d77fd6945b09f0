/// What syncamp's probes need to know of one QEMU build: the parameters of every probed
/// function and the offsets of the struct fields they read through, on x86-64.
///
/// The one place with QEMU's layouts. The collector fills it from the binary's DWARF (or
/// its debug file) when there is one, and from the table of the binary's version
/// otherwise (`QemuABI.table(for:)`); it then places every probe's arguments in the
/// canonical order of its role (`ProbeRole`, QEMU 7.2's parameter lists), so nothing
/// after the collector knows which QEMU it traced.
public struct QemuABI: Sendable, Equatable {
    /// Where this ABI came from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// The DWARF of the binary or of its debug file at this path.
        case dwarf(String)
        /// The built-in table of this QEMU release series ("7.2", "8.0").
        case table(String)
        /// No table for the binary's version (or no version found): the nearest table, as a guess.
        case nearestTable(String)

        public var description: String {
            switch self {
            case let .dwarf(path): return "DWARF of \(path)"
            case let .table(series): return "built-in table for QEMU \(series)"
            case let .nearestTable(series): return "built-in table for QEMU \(series), the nearest (no table for this version)"
            }
        }
    }

    /// Byte offsets of the fields the probes read through pointers (x86-64).
    public struct Offsets: Sendable, Equatable {
        /// `BlockDriverState.drv` and `.opaque` (include/block/block_int-common.h).
        public var bsDrv: Int32
        public var bsOpaque: Int32
        /// `BlockDriver.format_name` (include/block/block_int-common.h).
        public var driverFormatName: Int32
        /// `BDRVQcow2State.l2_table_cache` and `.refcount_block_cache` (block/qcow2.h).
        public var l2TableCache: Int32
        public var refcountBlockCache: Int32
        /// `Qcow2Cache.depends` and `.depends_on_flush` (block/qcow2-cache.c).
        public var cacheDepends: Int32
        public var cacheDependsOnFlush: Int32
        /// `RawPosixAIOData.bs`, `.aio_type` and `.aio_fildes` (block/file-posix.c).
        public var aiocbBs: Int32
        public var aiocbType: Int32
        public var aiocbFd: Int32
        /// `QEMUIOVector.size` (include/qemu/iov.h: in a union after `iov` and `niov`).
        public var qiovSize: Int32
        /// `Coroutine.entry_arg` and `.caller` (include/qemu/coroutine_int.h).
        public var coroutineEntryArg: Int32
        public var coroutineCaller: Int32
        /// `BlockAIOCB.opaque` (include/block/aio.h).
        public var aiocbOpaque: Int32
        /// `ThreadPoolCo.co` (util/thread-pool.c): the coroutine waiting on a thread-pool job.
        public var threadPoolCoCoroutine: Int32

        /// Each offset with the struct and field it is, for checks against DWARF.
        public var fields: [(structName: String, field: String, offset: Int32)] {
            [("BlockDriverState", "drv", bsDrv), ("BlockDriverState", "opaque", bsOpaque),
             ("BlockDriver", "format_name", driverFormatName),
             ("BDRVQcow2State", "l2_table_cache", l2TableCache), ("BDRVQcow2State", "refcount_block_cache", refcountBlockCache),
             ("Qcow2Cache", "depends", cacheDepends), ("Qcow2Cache", "depends_on_flush", cacheDependsOnFlush),
             ("RawPosixAIOData", "bs", aiocbBs), ("RawPosixAIOData", "aio_type", aiocbType),
             ("RawPosixAIOData", "aio_fildes", aiocbFd), ("QEMUIOVector", "size", qiovSize),
             ("Coroutine", "entry_arg", coroutineEntryArg), ("Coroutine", "caller", coroutineCaller),
             ("BlockAIOCB", "opaque", aiocbOpaque), ("ThreadPoolCo", "co", threadPoolCoCoroutine)]
        }

        /// Sets the offset of `structName.field`; false if the ABI has no such field.
        @discardableResult
        public mutating func set(_ structName: String, _ field: String, _ value: Int32) -> Bool {
            switch (structName, field) {
            case ("BlockDriverState", "drv"): bsDrv = value
            case ("BlockDriverState", "opaque"): bsOpaque = value
            case ("BlockDriver", "format_name"): driverFormatName = value
            case ("BDRVQcow2State", "l2_table_cache"): l2TableCache = value
            case ("BDRVQcow2State", "refcount_block_cache"): refcountBlockCache = value
            case ("Qcow2Cache", "depends"): cacheDepends = value
            case ("Qcow2Cache", "depends_on_flush"): cacheDependsOnFlush = value
            case ("RawPosixAIOData", "bs"): aiocbBs = value
            case ("RawPosixAIOData", "aio_type"): aiocbType = value
            case ("RawPosixAIOData", "aio_fildes"): aiocbFd = value
            case ("QEMUIOVector", "size"): qiovSize = value
            case ("Coroutine", "entry_arg"): coroutineEntryArg = value
            case ("Coroutine", "caller"): coroutineCaller = value
            case ("BlockAIOCB", "opaque"): aiocbOpaque = value
            case ("ThreadPoolCo", "co"): threadPoolCoCoroutine = value
            default: return false
            }
            return true
        }
    }

    public var source: Source
    public var offsets: Offsets
    /// The parameter names of each probed function, in order (its x86-64 argument registers).
    public var parameters: [String: [String]]

    public init(source: Source, offsets: Offsets, parameters: [String: [String]]) {
        self.source = source
        self.offsets = offsets
        self.parameters = parameters
    }

    /// `QEMU_AIO_FLUSH`, RawPosixAIOData.aio_type of a flush job (include/block/raw-aio.h).
    public static let aioFlush: UInt64 = 0x0008

    /// The canonical parameter order of each probed function: QEMU 7.2's. A probe's event
    /// carries its arguments in this order whatever the QEMU version (see `argumentMap`).
    public static var canonicalParameters: [String: [String]] { qemu72.parameters }

    /// For each canonical argument of `function`, the index of the same parameter in this
    /// build (nil: the build's function has no such parameter), or nil when the order is the
    /// canonical one (no remapping needed) or the function is not known to either.
    public func argumentMap(_ function: String) -> [Int?]? {
        guard let canonical = Self.canonicalParameters[function], let actual = parameters[function],
              canonical != actual else { return nil }
        return canonical.map { actual.firstIndex(of: $0) }
    }

    // MARK: tables

    /// QEMU 7.2 (x86-64), read from the DWARF of a 7.2.0 build (gcc 12, -O2) and checked against
    /// it by QemuABITests; the parameter lists are the sources' (block/*.c, util/*.c).
    public static let qemu72 = QemuABI(
        source: .table("7.2"),
        offsets: Offsets(bsDrv: 16, bsOpaque: 0x18, driverFormatName: 0, l2TableCache: 0x50, refcountBlockCache: 0x58,
                         cacheDepends: 8, cacheDependsOnFlush: 24, aiocbBs: 0, aiocbType: 8, aiocbFd: 12, qiovSize: 32,
                         coroutineEntryArg: 8, coroutineCaller: 16, aiocbOpaque: 24, threadPoolCoCoroutine: 0),
        parameters: [
            "blk_co_do_pwritev_part": ["blk", "offset", "bytes", "qiov", "qiov_offset", "flags"],
            "blk_pwrite": ["blk", "offset", "bytes", "buf", "flags"],
            "blk_aio_pwritev": ["blk", "offset", "qiov", "flags", "cb", "opaque"],
            "blk_aio_flush": ["blk", "cb", "opaque"],
            "blk_co_flush": ["blk"],
            "blk_co_pdiscard": ["blk", "offset", "bytes"],
            "blk_aio_pdiscard": ["blk", "offset", "bytes", "cb", "opaque"],
            "blk_co_truncate": ["blk", "offset", "exact", "prealloc", "flags", "errp"],
            "qcow2_co_pwritev_part": ["bs", "offset", "bytes", "qiov", "qiov_offset", "flags"],
            "qcow2_alloc_host_offset": ["bs", "offset", "bytes", "host_offset", "m"],
            "qcow2_cache_write": ["bs", "c"],
            "qcow2_cache_entry_flush": ["bs", "c", "i"],
            "qcow2_write_l1_entry": ["bs", "l1_index"],
            "bdrv_co_flush": ["bs"],
            "raw_co_flush_to_disk": ["bs"],
            "thread_pool_submit_aio": ["pool", "func", "arg", "cb", "opaque"],
            "handle_aiocb_flush": ["opaque"],
            "qemu_fdatasync": ["fd"],
            "qcow2_cache_set_dependency": ["bs", "c", "dependency"],
            "qcow2_mark_dirty": ["bs"],
            "qcow2_grow_l1_table": ["bs", "min_size", "exact_size"],
            "bdrv_co_pwrite_sync": ["child", "offset", "bytes", "buf", "flags"],
            "blk_unref": ["blk"],
        ])

    /// QEMU 8.0 to 10.x: `thread_pool_submit_aio` lost its `ThreadPool *pool` (the pool is the
    /// current AioContext's, util/thread-pool.c); every other probed layout is 7.2's (checked
    /// against the DWARF of a 10.0.13 build by QemuABITests).
    public static let qemu80: QemuABI = {
        var abi = qemu72
        abi.source = .table("8.0")
        abi.parameters["thread_pool_submit_aio"] = ["func", "arg", "cb", "opaque"]
        return abi
    }()

    /// QEMU 10.0: `blk_co_pdiscard` has a trailing `BdrvRequestFlags flags` (checked against the
    /// DWARF of a 10.0.13 build; the release that added it was not checked, and a trailing
    /// parameter moves none of the canonical ones).
    public static let qemu100: QemuABI = {
        var abi = qemu80
        abi.source = .table("10.0")
        abi.parameters["blk_co_pdiscard"] = ["blk", "offset", "bytes", "flags"]
        return abi
    }()

    /// The tables, oldest first, with the first release each covers.
    public static let tables: [(since: QemuVersion, abi: QemuABI)] = [
        (QemuVersion(major: 7, minor: 2, micro: 0), qemu72),
        (QemuVersion(major: 8, minor: 0, micro: 0), qemu80),
        (QemuVersion(major: 10, minor: 0, micro: 0), qemu100),
    ]

    /// The newest release the tables are known to hold for; later ones get the newest table, said so.
    public static let newestKnown = QemuVersion(major: 10, minor: 2, micro: 99)

    /// The table for `version`: the last whose series it is in. For a version the tables do
    /// not cover (older than the first, newer than `newestKnown`, or none found) the nearest
    /// one, marked `nearestTable`: the oldest for older releases, else the newest.
    public static func table(for version: QemuVersion?) -> QemuABI {
        if let v = version, v >= tables[0].since, v <= newestKnown, let t = tables.last(where: { v >= $0.since }) {
            return t.abi
        }
        var abi = version.map { $0 < tables[0].since } == true ? tables[0].abi : tables[tables.count - 1].abi
        if case let .table(series) = abi.source { abi.source = .nearestTable(series) }
        return abi
    }
}
