
/// One QEMU trace event, as a USDT probe, standing for a catalog role.
public struct USDTEntry: Sendable {
    public var role: ProbeRole
    /// The trace event's name (provider `qemu`), as QEMU 7.2 calls it.
    public var event: String
    /// Its names in later QEMU releases (block/trace-events, util/trace-events), tried in
    /// order when the binary has no event of the first name.
    public var laterNames: [String] = []
    /// How many arguments the event has (checked against the binary's `.note.stapsdt`).
    public var arity: Int
    /// For each of the role's arguments, the USDT argument that holds it (nil: none).
    public var args: [UInt8?]
    public var derefs: [DerefSpec] = []
    /// Values the role reads through pointers that the event gives directly, by name.
    public var constants: [String: UInt64] = [:]
    public var required: Bool
    public var whenMissing: String
    /// Whether the default (minimal) set attaches it.
    public var inMinimalSet = true
    /// Where the event's coroutine is (see `Manifest.Probe.coroutineFrom`).
    public var coroutineFrom: String? = nil

    public init(role: ProbeRole, event: String, laterNames: [String] = [], arity: Int, args: [UInt8?],
                derefs: [DerefSpec] = [], constants: [String: UInt64] = [:], required: Bool, whenMissing: String,
                inMinimalSet: Bool = true, coroutineFrom: String? = nil) {
        self.role = role
        self.event = event
        self.laterNames = laterNames
        self.arity = arity
        self.args = args
        self.derefs = derefs
        self.constants = constants
        self.required = required
        self.whenMissing = whenMissing
        self.inMinimalSet = inMinimalSet
        self.coroutineFrom = coroutineFrom
    }
}

/// The trace events syncamp uses when QEMU was built with the dtrace trace backend
/// and the binary has no symbols (block/trace-events and util/trace-events of QEMU 7.2
/// and 10.0; USDTCatalogTests checks each against both versions' files and binaries).
/// Struct offsets are QEMU 7.2's, which QEMU 10 keeps (QemuABI).
///
/// Each event is placed so that its event's `args` are those of the function the
/// role names, and the analysis reads them the same way. What the events do not
/// carry is lost, and the report says so:
/// - guest flushes have no event: a qcow2 cache write-back in a coroutine other
///   than the running write request's starts an inferred guest flush;
/// - not every event names its coroutine: `blk_co_pwritev` and
///   `qcow2_l2_allocate_write_l1` take the one of the next event on their thread
///   (the request's qcow2 entry, the L1 entry's own write), which holds unless
///   the request waits in between (throttling, serialisation);
/// - cache dependencies (`depends`) are not read: pre-flushes inside a guest flush
///   count as `refcount_dependency`, and F3, F10, F11 are not told apart;
/// - lazy_refcounts' dirty bit, L1 and refcount-table growth and new refcount
///   blocks (F7-F9, F12) have no event and count as `l2_table_alloc` in writes.
public enum USDTCatalog {
    public static let provider = "qemu"

    /// Every name the event may have, QEMU 7.2's first.
    public static func names(_ u: USDTEntry) -> [String] { [u.event] + u.laterNames }

    public static let entries: [USDTEntry] = [
        // blk_co_pwritev(blk, bs, offset, bytes, flags): inside blk_co_do_pwritev_part, every BlockBackend write.
        // flags goes where blk_co_do_pwritev_part has it (canonical argument 5): BDRV_REQ_ZERO_WRITE
        // makes the request a write-zeroes.
        USDTEntry(role: .guestWriteCo, event: "blk_co_pwritev", arity: 5, args: [0, 2, 3, nil, nil, 4], required: true,
                  whenMissing: "guest writes are not seen", coroutineFrom: "next"),
        // qcow2_writev_start_req(co, offset, bytes): the first statement of qcow2_co_pwritev_part.
        USDTEntry(role: .qcow2Write, event: "qcow2_writev_start_req", arity: 3, args: [0, 1, 2], required: true,
                  whenMissing: "qcow2 writes are not seen, and guest flushes cannot be inferred", coroutineFrom: "arg0"),
        // qcow2_writev_done_req(co, ret): the end of qcow2_co_pwritev_part. A pooled coroutine then
        // free may next serve a guest flush, which has no event of its own to claim it.
        USDTEntry(role: .qcow2WriteDone, event: "qcow2_writev_done_req", arity: 2, args: [0, 1], required: false,
                  whenMissing: "a flush in a coroutine a write used before is taken as part of that write",
                  coroutineFrom: "arg0"),
        // qcow2_cache_flush(co, c): despite its name, the start of qcow2_cache_write; c is 1 for the L2 cache.
        USDTEntry(role: .qcow2CacheWrite, event: "qcow2_cache_flush", arity: 2, args: [0, 1],
                  constants: ["l2_table_cache": 1, "refcount_block_cache": 0], required: true,
                  whenMissing: "cache write-backs are not seen, and guest flushes cannot be inferred", coroutineFrom: "arg0"),
        // qcow2_cache_entry_flush(co, c, i): only dirty entries (after the clean-entry return).
        USDTEntry(role: .qcow2CacheEntryFlush, event: "qcow2_cache_entry_flush", arity: 3, args: [0, 1, 2],
                  constants: ["l2_table_cache": 1, "refcount_block_cache": 0], required: false,
                  whenMissing: "per-entry write-backs are not shown", inMinimalSet: false, coroutineFrom: "arg0"),
        // qcow2_l2_allocate_write_l1(bs, l1_index): two lines before qcow2_write_l1_entry in l2_allocate.
        // No coroutine argument: the L1 entry's own write (a thread_pool_submit) follows on the thread at once.
        USDTEntry(role: .qcow2WriteL1Entry, event: "qcow2_l2_allocate_write_l1", arity: 2, args: [0, 1], required: false,
                  whenMissing: "new L2 tables are not marked in the trees", coroutineFrom: "next"),
        // thread_pool_submit(pool, req, opaque), thread_pool_submit_aio in QEMU 10 with the same
        // arguments: opaque is the job's RawPosixAIOData (the `arg` of the function
        // thread_pool_submit_aio); req's BlockAIOCB.opaque is the ThreadPoolCo whose first field is the coroutine.
        USDTEntry(role: .threadPoolSubmit, event: "thread_pool_submit", laterNames: ["thread_pool_submit_aio"], arity: 3, args: [0, 1, 2],
                  derefs: [
                    DerefSpec(name: "coroutine", arg: 1, offsets: [QemuABI.qemu72.offsets.aiocbOpaque, QemuABI.qemu72.offsets.threadPoolCoCoroutine], size: 8),
                    DerefSpec(name: "aio_type", arg: 2, offsets: [QemuABI.qemu72.offsets.aiocbType], size: 4),
                    DerefSpec(name: "fd", arg: 2, offsets: [QemuABI.qemu72.offsets.aiocbFd], size: 4),
                  ],
                  required: true, whenMissing: "host syncs cannot be linked to the request that submitted them",
                  coroutineFrom: "deref:coroutine"),
        // blk_root_detach(child, blk, bs): a BlockBackend lets go of its node (blk_unref, at close).
        USDTEntry(role: .backendUnref, event: "blk_root_detach", arity: 3, args: [1], required: false,
                  whenMissing: "close work is grouped with the last request"),
    ]
}
