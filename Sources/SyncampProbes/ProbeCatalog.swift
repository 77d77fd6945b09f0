
/// A value a uprobe reads through pointers at function entry (see `struct syncamp_deref`).
public struct DerefSpec: Sendable {
    public var name: String
    public var arg: UInt8
    /// Offsets of up to three reads (see `struct syncamp_deref`): `*(size*)(args[arg] + offsets[0])`, or with two,
    /// `*(size*)(*(u64*)(args[arg] + offsets[0]) + offsets[1])`.
    public var offsets: [Int32]
    public var size: UInt8

    public init(name: String, arg: UInt8, offsets: [Int32], size: UInt8) {
        self.name = name
        self.arg = arg
        self.offsets = offsets
        self.size = size
    }
}

/// One probe of the catalog: a role, the symbols that can serve it, what to read.
public struct CatalogEntry: Sendable {
    public var role: ProbeRole
    /// The preferred symbol first, then exported equivalents for stock binaries.
    public var symbols: [String]
    public var derefs: [DerefSpec]
    /// Needed for correct totals: missing it is an error unless --allow-missing.
    public var required: Bool
    /// Said in the manifest when no symbol of this entry exists.
    public var whenMissing: String
    /// Attach this entry only when `role` resolved to an exported fallback: the
    /// preferred symbol of `role` already covers what this entry sees.
    public var onlyWhenFallbackFor: ProbeRole? = nil
    /// Attach this entry (in any set) only when no probe of `role` was planned.
    public var onlyWhenMissing: ProbeRole? = nil
    /// Whether the default (minimal) probe set attaches it; `--detail` attaches every entry.
    public var inMinimalSet: MinimalRule = .always

    public init(role: ProbeRole, symbols: [String], derefs: [DerefSpec], required: Bool, whenMissing: String,
                onlyWhenFallbackFor: ProbeRole? = nil, onlyWhenMissing: ProbeRole? = nil, inMinimalSet: MinimalRule = .always) {
        self.role = role
        self.symbols = symbols
        self.derefs = derefs
        self.required = required
        self.whenMissing = whenMissing
        self.onlyWhenFallbackFor = onlyWhenFallbackFor
        self.onlyWhenMissing = onlyWhenMissing
        self.inMinimalSet = inMinimalSet
    }
}

/// When an entry belongs to the minimal probe set, the default.
///
/// A uprobe hit costs a trap into the kernel (about 5 us on a VM), so the
/// default set leaves out the probes that fire many times per guest request
/// and add detail the causes do not need.
public enum MinimalRule: Sendable, Equatable {
    case always
    /// Only with `--detail`.
    case detailOnly
    /// In the minimal set only when no probe of these roles was planned (it stands in for them).
    case whenNoneOf([ProbeRole])
}

/// Which probes a capture attaches: `minimal` (the default) or `detail` (`--detail`).
public enum ProbeSet: String, Sendable {
    case minimal, detail
}

/// The probes syncamp attaches to QEMU, as data, for one build's ABI (QemuABI: the
/// offsets of what the probes read through pointers; ../shared/reference/qcow2-flush-sites.md
/// §4.2 names the fields).
public enum ProbeCatalog {
    /// The first 8 bytes of the node's format name ("qcow2", "file"), through bs->drv->format_name.
    public static func formatDeref(_ o: QemuABI.Offsets) -> DerefSpec {
        DerefSpec(name: "format", arg: 0, offsets: [o.bsDrv, o.driverFormatName, 0], size: 8)
    }

    public static func cacheDerefs(_ o: QemuABI.Offsets) -> [DerefSpec] {
        [DerefSpec(name: "depends", arg: 1, offsets: [o.cacheDepends], size: 8),
         DerefSpec(name: "depends_on_flush", arg: 1, offsets: [o.cacheDependsOnFlush], size: 1),
         DerefSpec(name: "l2_table_cache", arg: 0, offsets: [o.bsOpaque, o.l2TableCache], size: 8),
         DerefSpec(name: "refcount_block_cache", arg: 0, offsets: [o.bsOpaque, o.refcountBlockCache], size: 8)]
    }

    /// The catalog for the canonical QEMU 7.2 layout (tests, and the USDT path's shared offsets).
    public static var entries: [CatalogEntry] { entries(QemuABI.qemu72) }

    /// The catalog with `abi`'s offsets. Arguments are named in each role's canonical order
    /// (ProbeRole): the collector remaps a build whose parameters moved (QemuABI.argumentMap).
    public static func entries(_ abi: QemuABI) -> [CatalogEntry] {
        let o = abi.offsets
        let cacheDerefs = cacheDerefs(o)
        let formatDeref = formatDeref(o)
        let qiovSize = o.qiovSize, bsOpaque = o.bsOpaque, aiocbType = o.aiocbType, aiocbFd = o.aiocbFd
        let l2TableCache = o.l2TableCache, refcountBlockCache = o.refcountBlockCache, cacheDepends = o.cacheDepends
        return [
            // Guest writes. blk_co_do_pwritev_part (static) is where every BlockBackend write
            // funnels through, device aio and qemu-io alike. Stock binaries lack it: there,
            // blk_aio_pwritev (devices, qemu-io aio_write) and blk_pwrite (qemu-io write; a
            // generated wrapper in another file, so never inlined away) cover the same
            // requests. blk_co_pwritev_part is not used: its callers in block-backend.c inline it.
            CatalogEntry(role: .guestWriteCo, symbols: ["blk_co_do_pwritev_part", "blk_pwrite"], derefs: [],
                         required: true, whenMissing: "synchronous writes (qemu-io write) are not seen"),
            CatalogEntry(role: .guestWriteAIO, symbols: ["blk_aio_pwritev"],
                         derefs: [DerefSpec(name: "bytes", arg: 2, offsets: [qiovSize], size: 8)],
                         required: true, whenMissing: "device and aio_write requests are not seen",
                         onlyWhenFallbackFor: .guestWriteCo),
            // Guest flushes: blk_co_do_flush is inlined everywhere, so both entry points are probed;
            // they are disjoint (blk_aio_flush never goes through blk_co_flush).
            CatalogEntry(role: .guestFlushAIO, symbols: ["blk_aio_flush"], derefs: [],
                         required: true, whenMissing: "device flush requests are not seen"),
            CatalogEntry(role: .guestFlushCo, symbols: ["blk_co_flush"], derefs: [],
                         required: true, whenMissing: "synchronous flushes (qemu-io flush) are not seen"),
            // Discards and resizes are requests of their own kinds: one hit per request, none per write
            // or flush. blk_co_pdiscard (qemu-io, jobs) and blk_aio_pdiscard (devices; its coroutine runs
            // the static blk_co_do_pdiscard) are disjoint. Write-zeroes needs no probe: it reaches
            // blk_co_do_pwritev_part with BDRV_REQ_ZERO_WRITE in its flags.
            CatalogEntry(role: .guestDiscardCo, symbols: ["blk_co_pdiscard"], derefs: [],
                         required: false, whenMissing: "synchronous discards (qemu-io discard) are not ops: their work is grouped as housekeeping"),
            CatalogEntry(role: .guestDiscardAIO, symbols: ["blk_aio_pdiscard"], derefs: [],
                         required: false, whenMissing: "device discard requests are not ops: their work is grouped as housekeeping"),
            CatalogEntry(role: .guestTruncateCo, symbols: ["blk_co_truncate"], derefs: [],
                         required: false, whenMissing: "resizes are not ops: their work (L1 growth) is grouped as housekeeping"),
            // Detail only: one hit per write request, and the op already starts at the guest entry point.
            CatalogEntry(role: .qcow2Write, symbols: ["qcow2_co_pwritev_part", "qcow2_alloc_host_offset"], derefs: [],
                         required: false, whenMissing: "qcow2 write work is not shown in the trees",
                         inMinimalSet: .detailOnly),
            CatalogEntry(role: .qcow2CacheWrite, symbols: ["qcow2_cache_write"], derefs: cacheDerefs,
                         required: false, whenMissing: "metadata cache write-back is not shown in the trees"),
            CatalogEntry(role: .qcow2CacheEntryFlush, symbols: ["qcow2_cache_entry_flush"], derefs: cacheDerefs,
                         required: false, whenMissing: "per-entry cache writes are not shown and evictions (F11) cannot be told from plain cache flushes; qcow2_cache_write's depends stands in for the dependency checks",
                         // Detail only: called for every cache entry, clean ones included (about 20 hits per guest flush).
                         inMinimalSet: .detailOnly),
            CatalogEntry(role: .qcow2WriteL1Entry, symbols: ["qcow2_write_l1_entry"], derefs: [],
                         required: false, whenMissing: "new L2 tables are not marked in the trees"),
            CatalogEntry(role: .nodeFlush, symbols: ["bdrv_co_flush"], derefs: [formatDeref],
                         required: false, whenMissing: "node flushes are not shown in the trees"),
            // Where a host sync starts: one hit per sync, none per data write. Static, so stock
            // binaries lack it and use thread_pool_submit_aio (hit by every data write too).
            CatalogEntry(role: .rawFlush, symbols: ["raw_co_flush_to_disk"],
                         derefs: [DerefSpec(name: "fd", arg: 0, offsets: [bsOpaque, 0], size: 4)],
                         required: false, whenMissing: "thread_pool_submit_aio links host syncs instead (one more hit per data write)"),
            CatalogEntry(role: .threadPoolSubmit, symbols: ["thread_pool_submit_aio"],
                         derefs: [
                            DerefSpec(name: "coroutine", arg: 4, offsets: [o.threadPoolCoCoroutine], size: 8),
                            DerefSpec(name: "aio_type", arg: 2, offsets: [aiocbType], size: 4),
                            DerefSpec(name: "fd", arg: 2, offsets: [aiocbFd], size: 4),
                         ],
                         required: true, whenMissing: "host syncs cannot be linked to the request that submitted them",
                         onlyWhenMissing: .rawFlush),
            CatalogEntry(role: .workerFlush, symbols: ["handle_aiocb_flush"],
                         derefs: [
                            DerefSpec(name: "aio_type", arg: 0, offsets: [aiocbType], size: 4),
                            DerefSpec(name: "fd", arg: 0, offsets: [aiocbFd], size: 4),
                            DerefSpec(name: "bs", arg: 0, offsets: [o.aiocbBs], size: 8),
                         ],
                         required: false, whenMissing: "worker flushes are linked to their submit in FIFO order instead of by pointer",
                         // raw_co_flush_to_disk's fd links the worker's system call by itself.
                         inMinimalSet: .whenNoneOf([.rawFlush])),
            // raw_co_flush_to_disk's fd or the worker flush already links the system call to its
            // request; qemu_fdatasync is needed only where neither has a symbol (stock binaries),
            // for the FIFO link by fd.
            CatalogEntry(role: .qemuFdatasync, symbols: ["qemu_fdatasync"], derefs: [],
                         required: true, whenMissing: "host syncs are seen only at the system call",
                         inMinimalSet: .whenNoneOf([.rawFlush, .workerFlush])),
            CatalogEntry(role: .qcow2SetDependency, symbols: ["qcow2_cache_set_dependency"],
                         derefs: [
                            DerefSpec(name: "l2_table_cache", arg: 0, offsets: [bsOpaque, l2TableCache], size: 8),
                            DerefSpec(name: "refcount_block_cache", arg: 0, offsets: [bsOpaque, refcountBlockCache], size: 8),
                            DerefSpec(name: "dependency_depends", arg: 2, offsets: [cacheDepends], size: 8),
                            DerefSpec(name: "depends", arg: 1, offsets: [cacheDepends], size: 8),
                         ],
                         required: false, whenMissing: "cross-dependency flushes (F10) are not told apart"),
            CatalogEntry(role: .qcow2MarkDirty, symbols: ["qcow2_mark_dirty"], derefs: [],
                         required: false, whenMissing: "lazy_refcounts' dirty-bit syncs (F12) are not told apart"),
            CatalogEntry(role: .qcow2GrowL1, symbols: ["qcow2_grow_l1_table"], derefs: [],
                         required: false, whenMissing: "L1 growth syncs (F7) are not told apart"),
            CatalogEntry(role: .qcow2RefcountArea, symbols: ["qcow2_refcount_area"], derefs: [],
                         required: false, whenMissing: "refcount table growth syncs (F9) are not told apart"),
            CatalogEntry(role: .pwriteSync, symbols: ["bdrv_co_pwrite_sync"], derefs: [],
                         required: false, whenMissing: "refcount block allocations (F8) are not told apart"),
            // One hit per image creation: what qcow2_co_create does is creation, not guest requests.
            CatalogEntry(role: .imageCreate, symbols: ["qcow2_co_create"], derefs: [],
                         required: false, whenMissing: "qcow2 image creation shows as guest writes and a resize"),
            // Snapshots and checks (F16): one hit per operation, none per guest request.
            CatalogEntry(role: .snapshotCreate, symbols: ["qcow2_snapshot_create"], derefs: [],
                         required: false, whenMissing: "internal snapshots are not told from image open or housekeeping"),
            CatalogEntry(role: .snapshotDelete, symbols: ["qcow2_snapshot_delete"], derefs: [],
                         required: false, whenMissing: "snapshot deletions are not told from image open or housekeeping"),
            CatalogEntry(role: .snapshotGoto, symbols: ["qcow2_snapshot_goto"], derefs: [],
                         required: false, whenMissing: "snapshot reverts are not told from image open or housekeeping"),
            CatalogEntry(role: .imageCheck, symbols: ["qcow2_co_check_locked", "qcow2_check_refcounts"], derefs: [],
                         required: false, whenMissing: "checks and the repair of a dirty image at open are not told from image open"),
            CatalogEntry(role: .makeEmpty, symbols: ["qcow2_make_empty"], derefs: [],
                         required: false, whenMissing: "emptying the top image after a commit is not told from close"),
            // Persistent dirty bitmaps: one hit per bitmap directory update (store at close, add,
            // remove, in-use marking at open), none per guest request.
            CatalogEntry(role: .bitmapDirectory, symbols: ["update_ext_header_and_dir"], derefs: [],
                         required: false, whenMissing: "persistent bitmap syncs are not told from close"),
            CatalogEntry(role: .bitmapDirectoryInPlace, symbols: ["update_ext_header_and_dir_in_place"], derefs: [],
                         required: false, whenMissing: "marking bitmaps in use at open is not told from open"),
            // Other formats: vmdk's write path syncs its grain table and descriptor itself. One hit
            // per vmdk write (and one more per new grain), none on other formats.
            CatalogEntry(role: .vmdkWrite, symbols: ["vmdk_co_pwritev"], derefs: [],
                         required: false, whenMissing: "vmdk writes' syncs are not told from other formats'"),
            CatalogEntry(role: .vmdkGrainTableUpdate, symbols: ["vmdk_L2update"], derefs: [],
                         required: false, whenMissing: "vmdk grain table updates are not told apart"),
            CatalogEntry(role: .backendUnref, symbols: ["blk_unref"], derefs: [],
                         required: false, whenMissing: "close work is grouped with the last request"),
            CatalogEntry(role: .closeAll, symbols: ["bdrv_close_all"], derefs: [],
                         required: false, whenMissing: "close work at exit is grouped with the last request"),
        ]
    }
}
