import SyncampCapture
import SyncampProbes

/// One capture event with its meaning decoded (`EventDecoder`): named, typed fields per probe
/// role and kernel event kind. Everything after the decoder reads these, never `args[]`,
/// derefs by name or symbol names.
struct DecodedEvent {
    /// Monotonic nanoseconds (`bpf_ktime_get_ns`).
    var timestamp: UInt64
    var tid: UInt32
    /// Uprobes: the manifest's probe id (hits are counted per probe); kernel events: 0.
    var probeID: UInt16
    /// Uprobes: the probe's role (nil: a probe this build does not know); its function is the
    /// probe's `ProbeIndex.Entry.symbol`. No string or reference is held: a decoded event is
    /// plain bytes, copied and dropped without reference counting.
    var role: ProbeRole?
    /// QEMU's coroutine context at a uprobe (0 where unknown).
    var coroutine: CoroutineContext
    var payload: Payload

    /// The coroutine context a uprobe read (bpf/syncamp.h: coroutine, coroutine_caller, ...).
    struct CoroutineContext {
        /// The running coroutine (`Coroutine *`).
        var running: UInt64
        /// The coroutine that entered it (`Coroutine.caller`).
        var caller: UInt64
        /// Its entry argument (a `blk_aio_*` request's BlkAioEmAIOCB), 0 if none.
        var entryArgument: UInt64
        /// `opaque` of the BlockAIOCB at `entryArgument`: the opaque the device passed to `blk_aio_*`.
        var opaque: UInt64
    }

    enum Payload {
        // QEMU, per probe role (ProbeRole documents each function).
        /// A guest request starts (write, write-zeroes, flush, discard, truncate).
        case request(Request)
        /// `qcow2_writev_done_req` (USDT): a qcow2 write is over.
        case writeDone
        case imageCreate
        /// An internal snapshot is taken, deleted or reverted to, or the image is checked (and
        /// repaired): work of that kind until the next request or close.
        case imageMaintenance(GuestOp.Kind)
        /// The persistent bitmaps' directory is rewritten (`update_ext_header_and_dir`, in place or not).
        case bitmapDirectory
        case backendUnref
        case closeAll
        /// `qcow2_co_pwritev_part(bs, offset, bytes, ...)`; the stock fallback has no byte count.
        case qcow2Write(offset: UInt64, bytes: UInt64?)
        case cacheWrite(CacheWrite)
        /// `qcow2_cache_entry_flush(bs, c, i)`.
        case cacheEntryFlush(CacheWrite, index: UInt32)
        /// `qcow2_cache_set_dependency(bs, c, dependency)`; `willFlush` per qcow2-cache.c:270-291.
        case setDependency(cache: CacheName, dependency: CacheName, willFlush: Bool)
        /// `qcow2_write_l1_entry(bs, l1_index)`.
        case l1Entry(index: UInt32)
        case markDirty
        case growL1
        case refcountArea
        /// `bdrv_co_flush(bs)`, with the node's format when read.
        case nodeFlush(format: FormatName?)
        /// `bdrv_co_pwrite_sync(child, offset, bytes, ...)`.
        case pwriteSync(offset: UInt64, bytes: UInt64)
        case vmdkWrite
        case vmdkGrainTableUpdate
        /// `raw_co_flush_to_disk(bs)`, with the file node's fd.
        case rawFlush(bs: UInt64, fd: UInt32?)
        /// `thread_pool_submit_aio(pool, func, arg, cb, opaque)` with the job's RawPosixAIOData fields.
        case poolSubmit(PoolSubmit)
        /// `handle_aiocb_flush(arg)`, with the job's node.
        case workerFlush(arg: UInt64, bs: UInt64?)
        /// `qemu_fdatasync(fd)`.
        case qemuFdatasync(fd: UInt32)
        /// A probe the manifest does not describe, or a role with nothing to decode.
        case otherProbe

        // Kernel.
        /// fdatasync/fsync entry (syscalls tracepoints or kprobes).
        case syncEnter(call: Syscall?, fd: UInt32)
        case syncExit(returnValue: Int64)
        /// An io_uring fsync submitted / completed: ring and user_data pair them on every kernel.
        case uringSubmit(ring: UInt64, userData: UInt64)
        case uringComplete(ring: UInt64, userData: UInt64, result: Int32)
        /// File system, journal and block layer (`StorageLinker`).
        case storage(StorageEvent)
        case unknown
    }

    /// A guest request's entry.
    struct Request {
        var kind: GuestOp.Kind
        /// Guest offset (truncate: the new size) and length in bytes.
        var offset: UInt64
        var bytes: UInt64
        /// The BlockBackend (`blk`, the first argument): the guest's disk.
        var backend: UInt64
        /// Write-zeroes: BDRV_REQ_MAY_UNMAP.
        var unmap: Bool?
        /// A write with BDRV_REQ_WRITE_COMPRESSED; nil when the probe does not read flags.
        var compressed: Bool? = nil
        var binding: Binding
    }

    /// How a request finds its coroutine (`OpResolver`).
    enum Binding {
        /// Its entry runs in its own coroutine.
        case ownCoroutine
        /// A `blk_aio_*` entry: the coroutine whose BlkAioEmAIOCB carries this opaque.
        case opaque(UInt64)
        /// The next event on the thread names it (`blk_pwrite`'s generated wrapper).
        case nextEvent
    }

    /// A qcow2 metadata cache write-back (`qcow2_cache_write(bs, c)`, `qcow2_cache_entry_flush`).
    struct CacheWrite {
        /// `Qcow2Cache *c` (USDT: the cache id) and which cache it is.
        var cache: UInt64
        var name: CacheName
        /// `c->depends`, 0 when none, and which cache that is.
        var depends: UInt64
        var dependsName: CacheName?
        /// `c->depends_on_flush`.
        var dependsOnFlush: Bool
    }

    /// `thread_pool_submit_aio`'s job.
    struct PoolSubmit {
        /// The job's RawPosixAIOData (`arg`): `handle_aiocb_flush`'s first argument.
        var arg: UInt64
        var aioType: UInt64?
        var fd: UInt32?
        /// The submitting ThreadPoolCo's coroutine.
        var coroutine: UInt64?
    }

    /// What the kernel's file-system, journal and block tracepoints said.
    /// The file system of a storage-stack event, from its probe id (`enum syncamp_fs`: 0 ext4,
    /// 1 xfs, 2 btrfs; another value reads as ext4). A plain value rather than `FileSystemKind`
    /// (which holds a string): a decoded event then copies as bytes, with no outlined copy per event.
    enum FileSystem: UInt8 {
        case ext4, xfs, btrfs

        init(eventFS: UInt16) {
            switch eventFS {
            case 1: self = .xfs
            case 2: self = .btrfs
            default: self = .ext4
            }
        }
    }

    enum StorageEvent {
        /// `ext4_sync_file_enter`, `xfs_file_fsync`, `btrfs_sync_file`.
        case fsSyncEnter(fs: FileSystem, dev: UInt32, inode: UInt64, datasync: Bool)
        case fsSyncExit(dev: UInt32, returnValue: Int32)
        /// `jbd2_start_commit`.
        case journalStart(dev: UInt32, transaction: UInt64)
        /// XFS's log force (`lsn`) or btrfs's transaction commit (`generation`), on the syncing thread.
        case logForce(dev: UInt32, lsn: Int64)
        case transactionCommit(dev: UInt32, generation: UInt64)
        case journalFlushing
        /// `jbd2_end_commit`.
        case journalEnd(dev: UInt32, transaction: UInt64)
        /// `jbd2_run_stats`.
        case journalStats(dev: UInt32, transaction: UInt64, blocks: UInt64, blocksLogged: UInt64)
        /// `block_rq_issue` / `block_rq_complete` of a flush or FUA write.
        case deviceIssue(dev: UInt32, sector: UInt64, rwbs: RWBS)
        case deviceComplete(dev: UInt32, rwbs: RWBS, error: Int32)
    }
}

/// Which qcow2 metadata cache a pointer is: the image's L2 table cache, its refcount block cache,
/// or neither (a pointer the probe could not match).
public enum CacheName: String, Sendable, Equatable {
    case l2
    case refcount
    case unknown
}

/// A node's format name as the probe reads it: the first 8 bytes of `bs->drv->format_name`.
public struct FormatName: Sendable, Equatable, CustomStringConvertible {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    /// Whether it is the file protocol ("file"), the node that makes host syncs.
    public var isFileProtocol: Bool { raw & 0xff_ffff_ffff == RequestEntry.fileProtocolFormat }

    /// Whether the name reads `name` as `description` would (up to its first NUL), with no
    /// string built: a node's flush names its format on every flush request.
    public func reads(_ name: Pattern) -> Bool { raw & name.mask == name.value }

    /// A name to compare with (`reads`): its bytes and NUL, little-endian, and the bytes they cover.
    public struct Pattern: Sendable {
        public let mask: UInt64
        public let value: UInt64

        /// Nil for a name longer than the 8 bytes a probe reads (no name read can be it).
        public init?(_ name: String) {
            let bytes = Array(name.utf8)
            guard bytes.count <= 8 else { return nil }
            var value: UInt64 = 0
            for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
            // The NUL after the name is part of it, unless the name fills all 8 bytes.
            let covered = min(8, bytes.count + 1)
            mask = covered == 8 ? .max : (1 << (8 * UInt64(covered))) - 1
            self.value = value
        }
    }

    /// The name ("qcow2", "file"), or "?" when the bytes are not printable.
    public var description: String {
        let bytes = withUnsafeBytes(of: raw.littleEndian) { Array($0) }.prefix { $0 != 0 }
        return bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) ? String(decoding: bytes, as: UTF8.self) : "?"
    }
}

/// A block request's flags as the block tracepoints spell them ("FF", "WFS", ...; up to 8 characters),
/// packed little-endian into 8 bytes by the BPF program.
public struct RWBS: Sendable, Equatable, CustomStringConvertible {
    public var packed: UInt64
    public init(packed: UInt64) { self.packed = packed }

    /// Whether the request is a flush (its flags start with "F").
    public var isFlush: Bool { packed & 0xff == UInt64(UInt8(ascii: "F")) }

    public var description: String {
        let bytes = withUnsafeBytes(of: packed.littleEndian) { Array($0) }.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
