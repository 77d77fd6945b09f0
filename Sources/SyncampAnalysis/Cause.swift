/// Why a host sync happened, named after the flush sites F1-F16 of the qcow2 flush-sites reference.
public enum Cause: String, Sendable, CaseIterable, Codable {
    /// Whether only qcow2's metadata code makes syncs of this cause (F2-F12, F15, its resize
    /// and options update): under another format driver's op it names the wrong driver.
    public var isQcow2Metadata: Bool {
        switch self {
        case .refcountDependency, .cowDependsOnFlush, .l2TableAlloc, .l1TableGrow, .refcountBlockAlloc,
             .refcountTableGrow, .dependencyCrossFlush, .l2Dependency, .cacheEviction, .resizeHeader,
             .cacheReconfigure, .lazyDirtyBit:
            return true
        default:
            return false
        }
    }

    /// F1: the guest flush's own final fdatasync.
    case guestFlush = "guest_flush"
    /// F2: writing a dirty L2 slice first writes and syncs the refcount cache.
    case refcountDependency = "refcount_dependency"
    /// F3: an L2 write after a real COW first syncs the file (depends_on_flush).
    case cowDependsOnFlush = "cow_depends_on_flush"
    /// F4-F6: a new L2 table: refcount cache flush, L2 cache flush, synced L1 entry.
    case l2TableAlloc = "l2_table_alloc"
    /// F7: L1 table growth.
    case l1TableGrow = "l1_table_grow"
    /// F8: a new refcount block: cache flushes and the synced refcount-table entry.
    case refcountBlockAlloc = "refcount_block_alloc"
    /// F9: refcount table growth.
    case refcountTableGrow = "refcount_table_grow"
    /// F10: setting a cache dependency while the opposite one is pending flushes a cache.
    case dependencyCrossFlush = "dependency_cross_flush"
    /// F15: after a refcount decrease (discard, write-zeroes with unmap, a freed table), the refcount
    /// cache depends on the L2 cache (qcow2-refcount.c:832-835): writing it back first writes and syncs
    /// the L2 cache (qcow2-cache.c:192-193), usually at the next guest flush.
    case l2Dependency = "l2_dependency"
    /// F11: evicting a dirty cache entry with a pending dependency.
    case cacheEviction = "cache_eviction"
    /// F16: a resize writes the new virtual size into the header, synced
    /// (`qcow2_co_truncate`, `bdrv_co_pwrite_sync` of QCowHeader.size at byte 24).
    case resizeHeader = "resize_header"
    /// F13/F16: `qcow2_update_options_prepare` flushes the L2 and refcount caches before it
    /// recomputes their sizes: after a resize (`qcow2_co_truncate` -> `qcow2_update_options`), on reopen.
    case cacheReconfigure = "cache_reconfigure"
    /// F12: lazy_refcounts' dirty bit, set by the first allocating write after open.
    case lazyDirtyBit = "lazy_dirty_bit"
    /// F13: closing the image (or QEMU exiting).
    case imageClose = "image_close"
    /// F14: write-through mode: a flush after every write (FUA emulation).
    case writethrough = "writethrough"
    /// vmdk: `vmdk_L2update` wrote a new grain's entry into the grain table and the redundant grain
    /// table, then flushed the file (block/vmdk.c); once per allocating write.
    case vmdkGrainTable = "vmdk_grain_table"
    /// vmdk: `vmdk_write_cid` rewrote the descriptor with a new content id, synced
    /// (`bdrv_pwrite_sync`), on the first write after open (block/vmdk.c, vmdk_pwritev).
    case vmdkDescriptor = "vmdk_descriptor"
    /// A sync in another format driver's write path that no probe tells apart (never a qcow2 cause).
    case formatMetadata = "format_metadata"
    /// Syncs while a qcow2 image is created (`qcow2_co_create`): its header, L1 growth to the disk size.
    case imageCreate = "image_create"
    /// Syncs of an internal snapshot being taken, deleted or reverted to (`qcow2_snapshot_*`:
    /// snapshot table, refcount updates, L1 copies; F16).
    case snapshot = "snapshot"
    /// Syncs of a consistency check with repairs (`qemu-img check -r`, or the repair of a dirty
    /// lazy_refcounts image at open; F16).
    case imageCheck = "image_check"
    /// Syncs of emptying an image after a commit (`qcow2_make_empty`: a new empty L1 and
    /// refcount structure, the header; F16).
    case makeEmpty = "make_empty"
    /// Syncs of the persistent dirty bitmaps: their directory and header extension rewritten after
    /// the caches are flushed (`update_ext_header_and_dir`, at close or when a bitmap is removed;
    /// in place when they are marked in use at open; F16).
    case bitmap = "bitmap"
    /// Syncs while the image is opened, before the first guest request.
    case imageOpen = "image_open"
    /// Syncs outside any guest request and not at open or close.
    case housekeeping = "housekeeping"
    /// Could not be placed; the report says why.
    case unattributed = "unattributed"
}

extension Cause: Hashable {
    /// Hashes the case, not its name: a String raw value otherwise makes every `[Cause: _]`
    /// lookup hash the name's bytes (about 380 instructions per lookup in the cost tally).
    public func hash(into hasher: inout Hasher) { hasher.combine(slot) }
}
