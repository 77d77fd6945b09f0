/// One node of a causal tree: something QEMU or the kernel did for a guest operation.
public struct CausalNode: Sendable, Equatable {
    /// What happened, e.g. "qcow2_cache_write", "thread_pool_submit", "worker_flush", "host_fdatasync".
    public var kind: String
    /// Monotonic nanoseconds since the capture started.
    public var timeNs: UInt64
    public var tid: UInt32
    /// The QEMU function behind it, if a uprobe.
    public var symbol: String?
    /// Small facts shown with the node (cache: "l2"; fd: "9"; ...), sorted by key in reports.
    public var details: [String: String]
    /// Host sync only: system-call latency and return value.
    public var latencyNs: UInt64?
    public var returnValue: Int64?
    /// Host sync only: why it happened.
    public var cause: Cause?
    public var children: [CausalNode]

    public init(kind: String, timeNs: UInt64, tid: UInt32, symbol: String? = nil, details: [String: String] = [:],
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
        (kind == CausalNode.hostSyncKind ? 1 : 0) + children.reduce(0) { $0 + $1.hostSyncs }
    }

    public static let hostSyncKind = "host_sync"

    /// Host syncs in this subtree, per cause.
    public func causes(into counts: inout [Cause: Int]) {
        if kind == CausalNode.hostSyncKind { counts[cause ?? .unattributed, default: 0] += 1 }
        for c in children { c.causes(into: &counts) }
    }

    /// Nodes of a kind in this subtree (journal commits, device flushes, ...).
    public func count(_ kind: String) -> Int {
        (self.kind == kind ? 1 : 0) + children.reduce(0) { $0 + $1.count(kind) }
    }

    /// The file descriptors of the host syncs in this subtree.
    public func syncFDs(into fds: inout [String: Int]) {
        if kind == CausalNode.hostSyncKind, let fd = details["fd"] { fds[fd, default: 0] += 1 }
        for c in children { c.syncFDs(into: &fds) }
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

        /// Whether the kind is a request through a BlockBackend (not a group of other work).
        public var isGuestRequest: Bool {
            switch self {
            case .write, .flush, .discard, .writeZeroes, .truncate: return true
            case .imageOpen, .imageClose, .housekeeping, .imageCreate: return false
            }
        }

        /// Whether the kind writes guest data or metadata at an offset (it has `offset` and `bytes`).
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

    public var hostSyncs: Int { children.reduce(0) { $0 + $1.hostSyncs } }

    /// Nodes of a kind under this op.
    public func count(_ kind: String) -> Int { children.reduce(0) { $0 + $1.count(kind) } }

    /// Host syncs under this op, per cause.
    public var causes: [Cause: Int] {
        var counts: [Cause: Int] = [:]
        for c in children { c.causes(into: &counts) }
        return counts
    }
    public var isGuestRequest: Bool { kind.isGuestRequest }
}
