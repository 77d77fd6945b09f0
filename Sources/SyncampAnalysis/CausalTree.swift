import SyncampProbes

/// What a node of a causal tree is.
public enum NodeKind: Hashable, Sendable, CustomStringConvertible {
    /// A host fdatasync/fsync system call or io_uring fsync.
    case hostSync
    /// `thread_pool_submit_aio` of a flush job (util/thread-pool.c).
    case threadPoolSubmit
    /// `raw_co_flush_to_disk` (block/file-posix.c): a host sync of the file node starts.
    case flushSubmit
    /// `handle_aiocb_flush` on a worker thread.
    case workerFlush
    /// `qemu_fdatasync(fd)` (util/cutils.c).
    case qemuFdatasync
    /// The file system's sync (`ext4_sync_file`, `xfs_file_fsync`, `btrfs_sync_file`).
    case fsSync
    /// A jbd2 commit, an XFS log force or a btrfs transaction commit.
    case journalCommit
    /// A flush request at the block device (`block_rq_issue`, rwbs "F...").
    case deviceFlush
    /// A FUA write at the block device.
    case deviceFUAWrite
    /// QEMU work a probe of this role saw (qcow2 cache write-backs, L1 entries, node flushes ...).
    case probe(ProbeRole)

    /// The name reports use: "host_sync", "qcow2_cache_write", ...
    public var name: String {
        switch self {
        case .hostSync: return "host_sync"
        case .threadPoolSubmit: return "thread_pool_submit"
        case .flushSubmit: return "flush_submit"
        case .workerFlush: return "worker_flush"
        case .qemuFdatasync: return "qemu_fdatasync"
        case .fsSync: return "fs_sync"
        case .journalCommit: return "journal_commit"
        case .deviceFlush: return "device_flush"
        case .deviceFUAWrite: return "device_fua_write"
        case let .probe(role): return role.rawValue
        }
    }

    public var description: String { name }

    /// Whether the node is below QEMU: the file system, its journal, the device.
    public var isStorage: Bool {
        switch self {
        case .fsSync, .journalCommit, .deviceFlush, .deviceFUAWrite: return true
        default: return false
        }
    }
}

/// How a host sync was made.
public enum SyncCall: String, Sendable, Equatable {
    case fdatasync
    case fsync
    case ioUringFsync = "io_uring_fsync"
    /// A sync system call this build does not name.
    case sync
}

/// The small facts shown with a node, typed; `strings` renders them (renderers only).
/// Pointers are QEMU's (`Coroutine *`, `BlockDriverState *`, RawPosixAIOData), sizes in bytes,
/// devices as the kernel's dev_t.
///
/// A node carries two to five of these facts, so they are stored compactly (a bit per fact
/// present and the values of those present, in `Key` order, six inline): a node is copied
/// once per event and per kept tree, and a struct of 25 optional fields made that copy
/// 250 bytes long.
public struct NodeDetails: Sendable, Equatable {
    /// The facts a node can carry, in storage order.
    enum Key: UInt8 {
        case coroutine, offset, bytes, cache, depends, dependsOnFlush, dependency, index, l1Index, format
        case job, node, submitCoroutine, fd, syscall, userData, dev, inode, datasync, lsn
        case generation, transaction, blocks, blocksLogged, rwbs, sector
    }

    /// The coroutine the probe fired in.
    public var coroutine: UInt64? { get { self[.coroutine] } set { self[.coroutine] = newValue } }
    public var offset: UInt64? { get { self[.offset] } set { self[.offset] = newValue } }
    public var bytes: UInt64? { get { self[.bytes] } set { self[.bytes] = newValue } }
    /// The qcow2 cache written back, the cache it depends on, and the dependency being set.
    public var cache: CacheName? { get { Self.cacheName(self[.cache]) } set { self[.cache] = newValue.map(Self.code) } }
    public var depends: CacheName? { get { Self.cacheName(self[.depends]) } set { self[.depends] = newValue.map(Self.code) } }
    public var dependsOnFlush: Bool {
        get { self[.dependsOnFlush] != nil }
        set { self[.dependsOnFlush] = newValue ? 1 : nil }
    }
    public var dependency: CacheName? { get { Self.cacheName(self[.dependency]) } set { self[.dependency] = newValue.map(Self.code) } }
    /// `qcow2_cache_entry_flush`'s entry index.
    public var index: UInt32? { get { self[.index].map(UInt32.init(truncatingIfNeeded:)) } set { self[.index] = newValue.map(UInt64.init) } }
    public var l1Index: UInt32? { get { self[.l1Index].map(UInt32.init(truncatingIfNeeded:)) } set { self[.l1Index] = newValue.map(UInt64.init) } }
    /// `bdrv_co_flush`'s node format.
    public var format: FormatName? { get { self[.format].map(FormatName.init(raw:)) } set { self[.format] = newValue?.raw } }
    /// A flush job's RawPosixAIOData, its node, its submitting coroutine.
    public var job: UInt64? { get { self[.job] } set { self[.job] = newValue } }
    public var node: UInt64? { get { self[.node] } set { self[.node] = newValue } }
    public var submitCoroutine: UInt64? { get { self[.submitCoroutine] } set { self[.submitCoroutine] = newValue } }
    public var fd: UInt32? { get { self[.fd].map(UInt32.init(truncatingIfNeeded:)) } set { self[.fd] = newValue.map(UInt64.init) } }
    public var syscall: SyncCall? {
        get { self[.syscall].map { Self.syncCalls[Int($0)] } }
        set { self[.syscall] = newValue.map { UInt64(Self.syncCalls.firstIndex(of: $0)!) } }
    }
    public var userData: UInt64? { get { self[.userData] } set { self[.userData] = newValue } }
    public var dev: UInt32? { get { self[.dev].map(UInt32.init(truncatingIfNeeded:)) } set { self[.dev] = newValue.map(UInt64.init) } }
    public var inode: UInt64? { get { self[.inode] } set { self[.inode] = newValue } }
    public var datasync: Bool? { get { self[.datasync].map { $0 != 0 } } set { self[.datasync] = newValue.map { $0 ? 1 : 0 } } }
    public var lsn: Int64? { get { self[.lsn].map(Int64.init(bitPattern:)) } set { self[.lsn] = newValue.map(UInt64.init(bitPattern:)) } }
    public var generation: UInt64? { get { self[.generation] } set { self[.generation] = newValue } }
    public var transaction: UInt64? { get { self[.transaction] } set { self[.transaction] = newValue } }
    public var blocks: UInt64? { get { self[.blocks] } set { self[.blocks] = newValue } }
    public var blocksLogged: UInt64? { get { self[.blocksLogged] } set { self[.blocksLogged] = newValue } }
    public var rwbs: RWBS? { get { self[.rwbs].map(RWBS.init(packed:)) } set { self[.rwbs] = newValue?.packed } }
    public var sector: UInt64? { get { self[.sector] } set { self[.sector] = newValue } }

    /// One bit per `Key` present.
    private var present: UInt32 = 0
    /// The values of the keys present, in key order: the first six here, any more in `more`.
    private var inline: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    private var more: [UInt64] = []
    private static let inlineCapacity = 6

    private static let syncCalls: [SyncCall] = [.fdatasync, .fsync, .ioUringFsync, .sync]
    private static func code(_ c: CacheName) -> UInt64 {
        switch c {
        case .l2: 0
        case .refcount: 1
        case .unknown: 2
        }
    }
    private static func cacheName(_ v: UInt64?) -> CacheName? {
        v.map { $0 == 0 ? .l2 : $0 == 1 ? .refcount : .unknown }
    }

    @inline(__always)
    private func slot(_ i: Int) -> UInt64 {
        guard i < Self.inlineCapacity else { return more[i - Self.inlineCapacity] }
        return withUnsafeBytes(of: inline) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
    }

    @inline(__always)
    private mutating func setSlot(_ i: Int, _ v: UInt64) {
        guard i < Self.inlineCapacity else { more[i - Self.inlineCapacity] = v; return }
        withUnsafeMutableBytes(of: &inline) { $0.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self) }
    }

    private var count: Int { present.nonzeroBitCount }

    private subscript(key: Key) -> UInt64? {
        @inline(__always)
        get {
            let bit = UInt32(1) << key.rawValue
            guard present & bit != 0 else { return nil }
            return slot((present & (bit - 1)).nonzeroBitCount)
        }
        // Inlined for the common case (nodes are made with their details, 2.4 per node): a new
        // key after every value present, in the inline slots, which is an append. Out of line,
        // each set was a call of about 80 instructions.
        @inline(__always)
        set {
            let bit = UInt32(1) << key.rawValue
            if let v = newValue, present & ~(bit &- 1) == 0 {
                let n = count
                if n < Self.inlineCapacity {
                    setSlot(n, v)
                    present |= bit
                    return
                }
            }
            set(bit, newValue)
        }
    }

    /// The general set (`subscript(key:)`): a value replaced, inserted among others or removed.
    @inline(never)
    private mutating func set(_ bit: UInt32, _ newValue: UInt64?) {
        let rank = (present & (bit - 1)).nonzeroBitCount
        let n = count
        switch (present & bit != 0, newValue) {
        case let (true, v?):
            setSlot(rank, v)
        case let (false, v?):
            // Shift the values after `rank` up by one.
            if n >= Self.inlineCapacity { more.append(0) }
            var i = n
            while i > rank { setSlot(i, slot(i - 1)); i -= 1 }
            setSlot(rank, v)
            present |= bit
        case (true, nil):
            for i in rank ..< n - 1 { setSlot(i, slot(i + 1)) }
            if n > Self.inlineCapacity { more.removeLast() }
            present &= ~bit
        case (false, nil):
            break
        }
    }

    public static func == (a: NodeDetails, b: NodeDetails) -> Bool {
        guard a.present == b.present else { return false }
        for i in 0 ..< a.count where a.slot(i) != b.slot(i) { return false }
        return true
    }

    public init() {}

    /// The details as reports show them, by key ("cache": "l2", "fd": "9", "co": "0x5630..."),
    /// sorted by key.
    public var strings: [(key: String, value: String)] {
        var d: [(String, String)] = []
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        if let v = bytes { d.append(("bytes", String(v))) }
        if let v = blocks { d.append(("blocks", String(v))) }
        if let v = blocksLogged { d.append(("blocks_logged", String(v))) }
        if let v = job { d.append(("arg", hex(v))) }
        if let v = node { d.append(("bs", hex(v))) }
        if let v = cache { d.append(("cache", v.rawValue)) }
        if let v = coroutine { d.append(("co", hex(v))) }
        if let v = submitCoroutine { d.append(("coroutine", hex(v))) }
        if let v = datasync { d.append(("datasync", v ? "1" : "0")) }
        if let v = dependency { d.append(("dependency", v.rawValue)) }
        if let v = depends { d.append(("depends", v.rawValue)) }
        if dependsOnFlush { d.append(("depends_on_flush", "true")) }
        if let v = dev { d.append(("dev", "\(v >> 20):\(v & 0xfffff)")) }
        if let v = fd { d.append(("fd", String(v))) }
        if let v = generation { d.append(("generation", String(v))) }
        if let v = index { d.append(("index", String(v))) }
        if let v = inode { d.append(("ino", String(v))) }
        if let v = l1Index { d.append(("l1_index", String(v))) }
        if let v = lsn { d.append(("lsn", String(v))) }
        if let v = format { d.append(("node", v.description)) }
        if let v = offset { d.append(("offset", String(v))) }
        if let v = rwbs { d.append(("rwbs", v.description)) }
        if let v = sector { d.append(("sector", String(v))) }
        if let v = syscall { d.append(("syscall", v.rawValue)) }
        if let v = transaction { d.append(("transaction", String(v))) }
        if let v = userData { d.append(("user_data", hex(v))) }
        return d.sorted { $0.0 < $1.0 }
    }
}

/// One node of a causal tree: something QEMU or the kernel did for a guest operation.
public struct CausalNode: Sendable, Equatable {
    public var kind: NodeKind
    /// Monotonic nanoseconds since the capture started.
    public var timeNs: UInt64
    public var tid: UInt32
    /// The QEMU function behind it, if a uprobe; the system call or kernel function below QEMU.
    public var symbol: String?
    /// Small facts shown with the node (cache, fd, dev ...).
    public var details: NodeDetails
    /// Host sync only: system-call latency and return value.
    public var latencyNs: UInt64?
    public var returnValue: Int64?
    /// Host sync only: why it happened.
    public var cause: Cause?
    public var children: [CausalNode]

    public init(kind: NodeKind, timeNs: UInt64, tid: UInt32, symbol: String? = nil, details: NodeDetails = NodeDetails(),
                latencyNs: UInt64? = nil, returnValue: Int64? = nil, cause: Cause? = nil, children: [CausalNode] = []) {
        self.kind = kind
        self.timeNs = timeNs
        self.tid = tid
        self.symbol = symbol
        self.details = details
        self.latencyNs = latencyNs
        self.returnValue = returnValue
        self.cause = cause
        self.children = children
    }

    /// Host fdatasync/fsync calls in this subtree.
    public var hostSyncs: Int {
        (kind == .hostSync ? 1 : 0) + children.reduce(0) { $0 + $1.hostSyncs }
    }

    /// Host syncs in this subtree, per cause.
    public func causes(into counts: inout [Cause: Int]) {
        if kind == .hostSync { counts[cause ?? .unattributed, default: 0] += 1 }
        for c in children { c.causes(into: &counts) }
    }

    /// Nodes of a kind in this subtree (journal commits, device flushes, ...).
    public func count(_ kind: NodeKind) -> Int {
        (self.kind == kind ? 1 : 0) + children.reduce(0) { $0 + $1.count(kind) }
    }
}

/// A guest operation (or a group of work outside any: image open, close) with the work it caused.
public struct GuestOp: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A write with data (`blk_co_do_pwritev_part`, `blk_aio_pwritev`).
        case write
        /// A flush (`blk_co_flush`, `blk_aio_flush`).
        case flush
        /// A discard (`blk_co_pdiscard`, `blk_aio_pdiscard`; block-backend.c): qcow2_co_pdiscard frees clusters.
        case discard
        /// A write without data: `blk_co_pwrite_zeroes`, which reaches `blk_co_do_pwritev_part` with
        /// BDRV_REQ_ZERO_WRITE (0x2) set, and BDRV_REQ_MAY_UNMAP (0x4) when it may unmap (`unmap`).
        case writeZeroes = "write_zeroes"
        /// A resize of the image through the BlockBackend (`blk_co_truncate`; qemu-io truncate,
        /// block_resize); growing a qcow2 image grows its L1 table (F7).
        case truncate
        /// Work before the first guest request: image open.
        case imageOpen = "image_open"
        /// Work after a BlockBackend is released or QEMU closes its images.
        case imageClose = "image_close"
        /// Work outside any guest request after the first one, before any close.
        case housekeeping
        /// Creating a qcow2 image (`qcow2_co_create`: qemu-img create, convert's target, blockdev-create),
        /// with the header writes and the resize it makes through its own BlockBackend.
        case imageCreate = "image_create"
        /// An internal snapshot taken, deleted or reverted to (`qcow2_snapshot_create`, `_delete`,
        /// `_goto`), with the work that follows it until a request or close.
        case snapshot
        /// A consistency check with repairs (`qemu-img check -r`; the repair of a dirty image at open).
        case imageCheck = "image_check"
        /// An image emptied after its data was committed to its backing file (`qcow2_make_empty`:
        /// qemu-img commit, block-commit), with the work that follows it until a request or close.
        case makeEmpty = "make_empty"

        /// Whether the kind is a request through a BlockBackend (not a group of other work).
        public var isGuestRequest: Bool {
            switch self {
            case .write, .flush, .discard, .writeZeroes, .truncate: return true
            case .imageOpen, .imageClose, .housekeeping, .imageCreate, .snapshot, .imageCheck, .makeEmpty: return false
            }
        }

        /// Whether the kind writes guest data or metadata at an offset (it has `offset` and `bytes`).
        @inline(__always)  // asked by each model run of each op: out of line, a call per ask
        public var hasRange: Bool { self == .write || self == .discard || self == .writeZeroes }
    }

    public var index: Int
    public var kind: Kind
    /// Guest byte offset and length; 0 for flushes and groups.
    public var offset: UInt64
    public var bytes: UInt64
    public var startNs: UInt64
    /// The time of the last event placed under the op (entry uprobes only: QEMU returns are not probed).
    public var endNs: UInt64
    public var tid: UInt32
    /// The entry point that started it, e.g. "blk_co_pwritev_part".
    public var entry: String
    public var children: [CausalNode]
    /// Uprobe hits placed under this op, to make probe cost visible.
    public var probeHits: Int
    /// The BlockBackend pointer of a guest request (its disk), 0 for groups.
    public var backend: UInt64 = 0
    /// The image file its host syncs went to, when known.
    public var image: String?
    /// The format driver the request reached when it is not qcow2 ("vmdk", from `vmdk_co_pwritev`);
    /// nil for qcow2 and when no probe says.
    public var format: String?
    /// Who made a request when it is not a guest: the qemu-img subcommand ("qemu-img convert",
    /// "qemu-img commit", ...) whose copy or merge it is; nil for qemu-io and QEMU's devices.
    public var origin: String?
    /// For `writeZeroes`: whether the request may unmap (BDRV_REQ_MAY_UNMAP); nil for other kinds.
    public var unmap: Bool?
    /// For `write`: true for a compressed write (BDRV_REQ_WRITE_COMPRESSED); nil otherwise.
    public var compressed: Bool?

    public var hostSyncs: Int { children.reduce(0) { $0 + $1.hostSyncs } }

    /// Nodes of a kind under this op.
    public func count(_ kind: NodeKind) -> Int { children.reduce(0) { $0 + $1.count(kind) } }

    /// Host syncs under this op, per cause.
    public var causes: [Cause: Int] {
        var counts: [Cause: Int] = [:]
        for c in children { c.causes(into: &counts) }
        return counts
    }
    public var isGuestRequest: Bool { kind.isGuestRequest }
}
