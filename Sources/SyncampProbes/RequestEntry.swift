/// What the entry points of guest requests say, beyond their role (block/block-backend.c,
/// include/block/block-common.h): which run inside the request's own coroutine, and which
/// carry the request flags. The analysis asks this once per probe, never per event.
public enum RequestEntry {
    /// Whether `symbol` runs inside the request's own coroutine (`blk_co_*`), so the coroutine
    /// running at its probe is the request's. The `blk_aio_*` entries run in the caller's
    /// context and create the request's coroutine; `blk_pwrite` (stripped binaries) creates it
    /// in a generated wrapper.
    public static func runsInRequestCoroutine(_ symbol: String) -> Bool {
        switch symbol {
        case "blk_co_do_pwritev_part", "blk_co_flush", "blk_co_pwritev_part", "blk_co_pdiscard", "blk_co_truncate",
             "qemu:blk_co_pwritev":
            return true
        default:
            return false
        }
    }

    /// The canonical argument that holds a write's `BdrvRequestFlags`, if `symbol` takes them:
    /// `blk_co_do_pwritev_part(blk, offset, bytes, qiov, qiov_offset, flags)`; the USDT event
    /// `blk_co_pwritev(blk, bs, offset, bytes, flags)` is placed in the same order (USDTCatalog).
    public static func flagsArgument(_ symbol: String) -> Int? {
        symbol == "blk_co_do_pwritev_part" || symbol == "blk_co_pwritev_part" || symbol == "qemu:blk_co_pwritev" ? 5 : nil
    }

    /// BDRV_REQ_ZERO_WRITE: `blk_co_pwrite_zeroes` reaches the write path with it set.
    public static let zeroWriteFlag: UInt64 = 0x2
    /// BDRV_REQ_MAY_UNMAP: a write-zeroes that may unmap (qemu-io `write -z -u`, detect-zeroes=unmap).
    public static let mayUnmapFlag: UInt64 = 0x4
    /// BDRV_REQ_WRITE_COMPRESSED: a compressed write (qemu-io `write -c`, backup/convert with compression).
    public static let compressedFlag: UInt64 = 0x20

    /// The canonical argument of each `blk_aio_*` entry that holds the device's `opaque`, which the
    /// request's BlkAioEmAIOCB carries into its coroutine: (blk, offset, qiov, flags, cb, opaque),
    /// (blk, offset, bytes, cb, opaque), (blk, cb, opaque).
    public static func opaqueArgument(_ role: ProbeRole) -> Int? {
        switch role {
        case .guestWriteAIO: return 5
        case .guestDiscardAIO: return 4
        case .guestFlushAIO: return 2
        default: return nil
        }
    }

    /// Image format drivers other than qcow2, by the first 8 bytes of their `format_name` (what the
    /// format probe reads): a flush of such a node names the op's format. Filter nodes
    /// (`mirror_top`, `commit_top`, `copy-on-read`, `throttle`, `preallocate`, `compress`, and
    /// `quorum`, whose children are the images) and protocols (`file`, `host_device`, `nbd` ...)
    /// are not formats.
    public static let otherImageFormats: Set<String> = [
        "raw", "vmdk", "vhdx", "vpc", "qed", "vdi", "parallels", "qcow", "luks", "bochs", "cloop", "dmg",
    ]

    /// `format_name` of the file protocol node ("file"), as the first bytes the format probe reads.
    public static let fileProtocolFormat: UInt64 = 0x656c_6966
}
