/// What a probed QEMU function means to the analysis.
///
/// The collector's probe catalog maps each role to a preferred symbol and
/// exported fallbacks; the manifest records the role of every attached probe,
/// so the analyzer never interprets symbols by name.
public enum ProbeRole: String, Codable, Sendable, CaseIterable {
    /// `blk_aio_pwritev(blk, offset, qiov, flags, cb, opaque)`: a device's (or qemu-io aio_write's) write request.
    case guestWriteAIO = "guest_write_aio"
    /// `blk_co_pwritev_part(blk, offset, bytes, qiov, qiov_offset, flags)`: a synchronous write (qemu-io write, jobs).
    case guestWriteCo = "guest_write_co"
    /// `blk_aio_flush(blk, cb, opaque)`: a device's flush request.
    case guestFlushAIO = "guest_flush_aio"
    /// `blk_co_flush(blk)`: a synchronous flush (qemu-io flush).
    case guestFlushCo = "guest_flush_co"
    /// `blk_co_pdiscard(blk, offset, bytes)`: a synchronous discard (qemu-io discard, jobs); it runs in the
    /// request's own coroutine (block-gen.c's `blk_co_pdiscard_entry`).
    case guestDiscardCo = "guest_discard_co"
    /// `blk_aio_pdiscard(blk, offset, bytes, cb, opaque)`: a device's discard request (virtio-blk, scsi UNMAP).
    case guestDiscardAIO = "guest_discard_aio"
    /// `blk_co_truncate(blk, offset, exact, prealloc, flags, errp)`: a resize through a BlockBackend
    /// (qemu-io truncate, block_resize); it runs in its own coroutine (`blk_co_truncate_entry`).
    case guestTruncateCo = "guest_truncate_co"
    /// `qcow2_co_pwritev_part(bs, offset, bytes, ...)`, or `qcow2_alloc_host_offset` on stock binaries: qcow2 write work.
    case qcow2Write = "qcow2_write"
    /// `qcow2_cache_write(bs, c)`: a metadata cache is written back (also the inlined `qcow2_cache_flush`).
    case qcow2CacheWrite = "qcow2_cache_write"
    /// `qcow2_cache_entry_flush(bs, c, i)`: one cache entry written, after any dependency flush.
    case qcow2CacheEntryFlush = "qcow2_cache_entry_flush"
    /// `qcow2_write_l1_entry(bs, l1_index)`: a synced L1 entry write (new L2 table).
    case qcow2WriteL1Entry = "qcow2_write_l1_entry"
    /// `bdrv_co_flush(bs)`: a flush of one node (qcow2, then file).
    case nodeFlush = "bdrv_co_flush"
    /// `raw_co_flush_to_disk(bs)`: file-posix starts a host sync of the file node `bs` (fdatasync
    /// through the thread pool, or an io_uring fsync). Flushes of one node are serialized
    /// (`bdrv_co_flush` waits on `active_flush_req`), so the sync that follows on the node's fd is this one's.
    case rawFlush = "raw_co_flush_to_disk"
    /// `thread_pool_submit_aio(pool, func, arg, cb, opaque)`: work handed to a worker thread.
    case threadPoolSubmit = "thread_pool_submit_aio"
    /// `handle_aiocb_flush(aiocb)`: a worker runs a flush job; aiocb == the submit's arg.
    case workerFlush = "handle_aiocb_flush"
    /// `qemu_fdatasync(fd)`: QEMU's wrapper around fdatasync(2).
    case qemuFdatasync = "qemu_fdatasync"
    /// `qcow2_cache_set_dependency(bs, c, dependency)`: may flush a cache first (F10).
    case qcow2SetDependency = "qcow2_cache_set_dependency"
    /// `qcow2_mark_dirty(bs)`: lazy_refcounts' dirty bit, a synced header write (F12).
    case qcow2MarkDirty = "qcow2_mark_dirty"
    /// `qcow2_grow_l1_table(bs, min_size, exact_size)`: L1 growth (F7).
    case qcow2GrowL1 = "qcow2_grow_l1_table"
    /// `qcow2_refcount_area(bs, ...)`: refcount table growth (F9).
    case qcow2RefcountArea = "qcow2_refcount_area"
    /// `bdrv_co_pwrite_sync(child, offset, bytes, buf, flags)`: a synced metadata write
    /// (L1 entry, refcount table entry of a new refcount block (F8), header).
    case pwriteSync = "bdrv_co_pwrite_sync"
    /// `blk_unref(blk)`: a BlockBackend is released (qemu-io exit, device unplug); what follows is close work.
    case backendUnref = "blk_unref"
    /// `bdrv_close_all()`: QEMU closes every image at exit.
    case closeAll = "bdrv_close_all"
    /// `qcow2_co_create(create_options, errp)`: a qcow2 image is created (qemu-img create, convert's
    /// target); it runs in its own coroutine, in which it writes the header and resizes through a BlockBackend.
    case imageCreate = "qcow2_co_create"
    /// `vmdk_co_pwritev(bs, offset, bytes, qiov, flags)`: a write reaches the vmdk driver; the op's
    /// syncs are vmdk's (block/vmdk.c), not qcow2's.
    case vmdkWrite = "vmdk_co_pwritev"
    /// `vmdk_L2update(extent, m_data, offset)`: a new grain's entry is written into the grain table
    /// and its redundant copy, then the file is flushed (block/vmdk.c).
    case vmdkGrainTableUpdate = "vmdk_L2update"
    /// `qcow2_snapshot_create(bs, sn_info)` (block/qcow2-snapshot.c): an internal snapshot is
    /// taken (qemu-img snapshot -c, savevm, blockdev-snapshot-internal-sync); F16.
    case snapshotCreate = "qcow2_snapshot_create"
    /// `qcow2_snapshot_delete(bs, snapshot_id, name, errp)`: an internal snapshot is deleted (F16).
    case snapshotDelete = "qcow2_snapshot_delete"
    /// `qcow2_snapshot_goto(bs, snapshot_id)`: the image is reverted to an internal snapshot
    /// (qemu-img snapshot -a, loadvm); it may grow the L1 table (F7) as part of it (F16).
    case snapshotGoto = "qcow2_snapshot_goto"
    /// `qcow2_co_check_locked(bs, result, fix)` (static; stripped builds: `qcow2_check_refcounts`,
    /// what it runs): a consistency check, with repairs when asked: qemu-img check -r, and the
    /// repair of a dirty (lazy_refcounts) image at open (block/qcow2.c:1826-1840; F16).
    case imageCheck = "qcow2_co_check_locked"
    /// `qcow2_make_empty(bs)` (static): an image is emptied, as qemu-img commit and block-commit
    /// do to the top image after committing it (block/qcow2.c, make_completely_empty; F16).
    case makeEmpty = "qcow2_make_empty"
    /// `update_ext_header_and_dir(bs, bm_list)` (static): the persistent bitmaps' directory and
    /// header extension are rewritten, after `qcow2_flush_caches`, with a synced header (storing
    /// bitmaps at close, removing one; block/qcow2-bitmap.c; F16).
    case bitmapDirectory = "update_ext_header_and_dir"
    /// `update_ext_header_and_dir_in_place(bs, bm_list)` (static): the bitmaps are marked in use
    /// in place when the image is opened or reopened for writing (F16).
    case bitmapDirectoryInPlace = "update_ext_header_and_dir_in_place"
    /// `qcow2_writev_done_req(co, ret)` (USDT only): a qcow2 write request is over; its coroutine
    /// goes back to the pool and may next run another request.
    case qcow2WriteDone = "qcow2_writev_done_req"

    /// Whether the role starts a guest request.
    public var isGuestRequest: Bool {
        switch self {
        case .guestWriteAIO, .guestWriteCo, .guestFlushAIO, .guestFlushCo, .guestDiscardCo, .guestDiscardAIO,
             .guestTruncateCo: return true
        default: return false
        }
    }
}
