import SyncampQcow2

/// QEMU's cache modes (`-t`/`cache=`), as far as host syncs go.
public enum CacheMode: String, Sendable, CaseIterable, Codable {
    case writeback, writethrough, unsafe, none, directsync

    /// A flush after every write (FUA emulation, io.c:1211-1215).
    public var writesThrough: Bool { self == .writethrough || self == .directsync }
    /// BDRV_O_NO_FLUSH: every host flush is a no-op.
    public var skipsFlushes: Bool { self == .unsafe }

    /// The cache mode the traced command asked for, if its command line says.
    ///
    /// qemu-io/qemu-img: `-t MODE`, `--cache=MODE` (qemu-io's default is
    /// writethrough, `-n` means none); qemu-system: `cache=MODE` in `-drive`
    /// (default writeback).
    public static func detect(command: [String]) -> CacheMode? {
        let tool = command.first?.split(separator: "/").last.map(String.init) ?? ""
        var mode: CacheMode?
        var i = 1
        while i < command.count {
            let a = command[i]
            if a == "-t" || a == "--cache", i + 1 < command.count {
                mode = CacheMode(rawValue: command[i + 1])
                i += 1
            } else if a.hasPrefix("--cache=") {
                mode = CacheMode(rawValue: String(a.dropFirst("--cache=".count)))
            } else if a == "-n" || a == "--nocache" {
                mode = mode ?? CacheMode.none
            } else if !a.hasPrefix("-"), let r = a.range(of: "cache=") {
                mode = CacheMode(rawValue: String(a[r.upperBound...].prefix { $0 != "," })) ?? mode
            }
            i += 1
        }
        if let mode { return mode }
        if tool.hasPrefix("qemu-io") { return .writethrough }
        if tool.hasPrefix("qemu-system") { return .writeback }
        return nil
    }
}

/// The block-node options of the traced command that change what qcow2 does, read from its
/// command line: qemu-io `-d`/`--discard`, and `key=value` lists (`-drive`, `--image-opts`,
/// `-blockdev` in its `key=value` form).
public struct DriveOptions: Sendable, Equatable {
    /// discard=unmap (BDRV_O_UNMAP): discards reach qcow2 and write-zeroes may unmap. qemu-io's
    /// default is unmap (qemu-io.c), QEMU's `-drive`/`-blockdev` default is ignore.
    public var discardUnmap: Bool
    /// detect-zeroes=on|unmap: a write whose data is all zero becomes a write-zeroes (io.c), which
    /// the model cannot tell from the request.
    public var detectZeroes: Bool
    /// l2-cache-size, cache-size, refcount-cache-size, l2-cache-entry-size in bytes, when given.
    public var l2CacheBytes: UInt64?
    public var cacheBytes: UInt64?
    public var refcountCacheBytes: UInt64?
    public var l2CacheEntryBytes: UInt64?
    /// cache-clean-interval in seconds (QEMU's default on Linux: 600; 0 turns it off).
    public var cacheCleanInterval: UInt64 = 600
    /// Whether the traced command may use the qcow2 caches outside the requests syncamp traces
    /// (reads, block-status queries): anything but a qemu-io whose `-c` commands only write,
    /// flush, discard or resize. An untraced cache lookup changes which slice a miss evicts.
    public var untracedCacheUse = true

    public init(discardUnmap: Bool = false, detectZeroes: Bool = false, l2CacheBytes: UInt64? = nil,
                cacheBytes: UInt64? = nil, refcountCacheBytes: UInt64? = nil, l2CacheEntryBytes: UInt64? = nil,
                untracedCacheUse: Bool = true) {
        self.discardUnmap = discardUnmap
        self.detectZeroes = detectZeroes
        self.l2CacheBytes = l2CacheBytes
        self.cacheBytes = cacheBytes
        self.refcountCacheBytes = refcountCacheBytes
        self.l2CacheEntryBytes = l2CacheEntryBytes
        self.untracedCacheUse = untracedCacheUse
    }

    /// QEMU 7.2's largest default L2 cache (DEFAULT_L2_CACHE_MAX_SIZE, qcow2.h:121, Linux): 32 MiB.
    public static let defaultL2CacheMax: UInt64 = 32 << 20

    /// The sizes of an image's two metadata caches as QEMU 7.2 makes them.
    public struct CacheGeometry: Sendable, Equatable {
        /// L2 cache entries (slices) and the bytes of one slice (l2-cache-entry-size).
        public var l2Entries: Int
        public var l2SliceBytes: UInt64
        /// Refcount cache entries (one refcount block each).
        public var refcountEntries: Int
        /// L2 slices the whole disk has: the L2 cache never evicts when it holds them all.
        public var diskSlices: UInt64
        public var l2CoversDisk: Bool { UInt64(l2Entries) >= diskSlices }
    }

    /// read_cache_sizes and qcow2_update_options_prepare (qcow2.c:871-1020): the default L2 cache
    /// covers the disk up to 32 MiB; `cache-size` is shared out (L2 first, the refcount cache
    /// gets at least 4 clusters); an L2 cache smaller than the disk has 4 KiB slices unless
    /// l2-cache-entry-size says; at least 2 L2 entries and 4 refcount blocks.
    public func geometry(_ image: ImageState) -> CacheGeometry {
        let cs = image.clusterSize
        let entryBytes: UInt64 = image.extendedL2 ? 16 : 8
        let maxL2Entries = (image.size + cs - 1) / cs
        let maxL2Cache = (maxL2Entries * entryBytes + cs - 1) / cs * cs
        let minRefcount = 4 * cs
        var l2 = min(maxL2Cache, l2CacheBytes ?? Self.defaultL2CacheMax)
        var refcount = refcountCacheBytes ?? 0
        if let combined = cacheBytes {
            if l2CacheBytes != nil {
                refcount = combined >= l2 ? combined - l2 : 0
            } else if let r = refcountCacheBytes {
                l2 = combined >= r ? combined - r : 0
            } else if combined >= maxL2Cache + minRefcount {
                l2 = maxL2Cache
                refcount = combined - l2
            } else {
                refcount = min(combined, minRefcount)
                l2 = combined - refcount
            }
        }
        var slice = min(max(l2CacheEntryBytes ?? cs, 512), cs)
        if l2 < maxL2Cache && l2CacheEntryBytes == nil { slice = min(cs, 4096) }
        let tables = (image.size + image.bytesPerL2Table - 1) / image.bytesPerL2Table
        return CacheGeometry(l2Entries: Int(clamping: max(2, l2 / slice)), l2SliceBytes: slice,
                             refcountEntries: Int(clamping: max(4, refcount / cs)),
                             diskSlices: max(UInt64(image.l1Size), tables) * (cs / slice))
    }

    /// qemu-io commands that use the qcow2 caches only through requests syncamp traces.
    static let tracedOnlyCommands: Set<String> = [
        "write", "writev", "aio_write", "flush", "aio_flush", "discard", "aio_discard", "truncate",
        "sleep", "length", "info", "wait_break", "resume", "break", "remove_break",
    ]

    /// The options a command line gives.
    public static func detect(command: [String]) -> DriveOptions {
        let tool = command.first?.split(separator: "/").last.map(String.init) ?? ""
        var o = DriveOptions(discardUnmap: tool.hasPrefix("qemu-io"))
        var sawCommand = false
        var onlyTraced = tool.hasPrefix("qemu-io")
        var i = 1
        while i < command.count {
            let a = command[i]
            if (a == "-c" || a == "--cmd"), i + 1 < command.count {
                sawCommand = true
                let name = command[i + 1].split(separator: " ").first.map(String.init) ?? ""
                if !Self.tracedOnlyCommands.contains(name) { onlyTraced = false }
                i += 2
                continue
            }
            if (a == "-d" || a == "--discard"), i + 1 < command.count, tool.hasPrefix("qemu-io") {
                o.discardUnmap = Self.unmaps(command[i + 1])
                i += 1
            } else if a.hasPrefix("--discard=") {
                o.discardUnmap = Self.unmaps(String(a.dropFirst("--discard=".count)))
            } else if !a.hasPrefix("-") {
                for pair in a.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2 else { continue }
                    // Options of a child node (file.discard) are the protocol node's, not qcow2's.
                    switch kv[0] {
                    case "discard": o.discardUnmap = Self.unmaps(kv[1])
                    case "detect-zeroes": o.detectZeroes = kv[1] != "off"
                    case "l2-cache-size": o.l2CacheBytes = Self.bytes(kv[1])
                    case "cache-size": o.cacheBytes = Self.bytes(kv[1])
                    case "refcount-cache-size": o.refcountCacheBytes = Self.bytes(kv[1])
                    case "l2-cache-entry-size": o.l2CacheEntryBytes = Self.bytes(kv[1])
                    case "cache-clean-interval": o.cacheCleanInterval = UInt64(kv[1]) ?? o.cacheCleanInterval
                    default: break
                    }
                }
            }
            i += 1
        }
        // qemu-io without -c reads its commands from stdin: any of them may read.
        o.untracedCacheUse = !(onlyTraced && sawCommand)
        return o
    }

    private static func unmaps(_ v: String) -> Bool { v == "unmap" || v == "on" }

    /// A QEMU size ("8192", "8K", "1M", "1G").
    public static func bytes(_ v: String) -> UInt64? {
        let units: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let u = v.last.flatMap({ units[$0] }) { return UInt64(v.dropLast()).map { $0 * u } }
        return UInt64(v)
    }
}

/// What the reference model simulates: the image as it was, and the options QEMU ran with.
public struct ModelOptions: Sendable, Equatable {
    public var cache: CacheMode
    /// Overrides for what-if questions; nil keeps the image's own setting.
    public var lazyRefcounts: Bool?
    /// "metadata" (all L2 tables and data clusters exist), or "off".
    public var preallocation: String?
    /// A different cluster size: the image is simulated as a fresh one of the same virtual size.
    public var clusterBits: Int?
    /// extended_l2 on or off: like a cluster size, the image is then simulated as a fresh one.
    public var extendedL2: Bool?
    /// The node options of the traced command (discard, detect-zeroes, cache sizes).
    public var drive = DriveOptions()
    /// Whether QEMU's metadata caches were empty when the capture started: the collector started
    /// the program (`-- COMMAND`); false when it attached to a running one.
    public var cacheStartsEmpty = true

    public init(cache: CacheMode, lazyRefcounts: Bool? = nil, preallocation: String? = nil, clusterBits: Int? = nil,
                extendedL2: Bool? = nil) {
        self.cache = cache
        self.lazyRefcounts = lazyRefcounts
        self.preallocation = preallocation
        self.clusterBits = clusterBits
        self.extendedL2 = extendedL2
    }

    /// The options as reports name them: cache, and any what-if override.
    public var summary: [String: String] {
        var o = ["cache": cache.rawValue]
        if let l = lazyRefcounts { o["lazy_refcounts"] = l ? "on" : "off" }
        if let p = preallocation { o["preallocation"] = p }
        if let b = clusterBits { o["cluster_size"] = String(1 << b) }
        if let e = extendedL2 { o["extended_l2"] = e ? "on" : "off" }
        if let l2 = drive.l2CacheBytes { o["l2-cache-size"] = String(l2) }
        return o
    }

    /// The image state with the what-if options applied.
    public func apply(to image: ImageState) -> ImageState {
        var s = image
        guard image.isPlausible else { return s }
        let bits = clusterBits ?? image.clusterBits, extended = extendedL2 ?? image.extendedL2
        if bits != image.clusterBits || extended != image.extendedL2 {
            s = ImageState.fresh(path: image.path, size: image.size, clusterBits: bits, refcountOrder: image.refcountOrder,
                                 extendedL2: extended)
        }
        if let lazy = lazyRefcounts { s.lazyRefcounts = lazy }
        switch preallocation {
        case "metadata"?, "falloc"?, "full"?:
            let tables = Int((s.size + s.bytesPerL2Table - 1) / s.bytesPerL2Table)
            s.l2Tables = Array(0..<tables)
            s.allocatedClusters = [.init(start: 0, end: (s.size + s.clusterSize - 1) / s.clusterSize)]
            let dataClusters = (s.size + s.clusterSize - 1) / s.clusterSize
            s.hostClusters = max(s.hostClusters, 4 + UInt64(tables) + dataClusters)
            let perBlock = s.clustersPerRefcountBlock
            s.refcountBlocks = Array(0...Int((s.hostClusters + perBlock) / perBlock))
        case "off"?:
            if image.isFullyAllocated {
                s = ImageState.fresh(path: s.path, size: s.size, clusterBits: s.clusterBits, refcountOrder: s.refcountOrder,
                                     extendedL2: s.extendedL2, lazyRefcounts: s.lazyRefcounts)
            }
        default:
            break
        }
        return s
    }
}

extension ImageState {
    /// Every cluster of the virtual disk is allocated (as preallocation=metadata leaves it).
    var isFullyAllocated: Bool {
        allocatedClusters == [.init(start: 0, end: (size + clusterSize - 1) / clusterSize)]
    }
}
