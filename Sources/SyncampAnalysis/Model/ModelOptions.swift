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
    /// l2-cache-size, cache-size, refcount-cache-size in bytes, when given.
    public var l2CacheBytes: UInt64?
    public var cacheBytes: UInt64?
    public var refcountCacheBytes: UInt64?

    public init(discardUnmap: Bool = false, detectZeroes: Bool = false, l2CacheBytes: UInt64? = nil,
                cacheBytes: UInt64? = nil, refcountCacheBytes: UInt64? = nil) {
        self.discardUnmap = discardUnmap
        self.detectZeroes = detectZeroes
        self.l2CacheBytes = l2CacheBytes
        self.cacheBytes = cacheBytes
        self.refcountCacheBytes = refcountCacheBytes
    }

    /// QEMU 7.2's largest default L2 cache (DEFAULT_L2_CACHE_MAX_SIZE, qcow2.h:121, Linux): 32 MiB.
    public static let defaultL2CacheMax: UInt64 = 32 << 20

    /// Whether the L2 cache may be too small to hold every L2 slice of `image` (then a miss can
    /// evict a dirty slice, F11, which the model does not simulate). The default cache covers the
    /// whole disk up to `defaultL2CacheMax` (qcow2.c:882-902).
    public func l2CacheMayEvict(_ image: ImageState) -> Bool {
        let needed = (image.size + image.clusterSize - 1) / image.clusterSize * (image.extendedL2 ? 16 : 8)
        let limit: UInt64
        switch (l2CacheBytes, cacheBytes) {
        case let (l2?, all?): limit = min(l2, all)
        case let (l2?, nil): limit = l2
        case let (nil, all?): limit = all
        case (nil, nil): limit = Self.defaultL2CacheMax
        }
        let refcountNeeded = UInt64(max(1, image.refcountBlocks.count)) * image.clusterSize
        return needed > limit || refcountCacheBytes.map { $0 < refcountNeeded } == true
    }

    /// The options a command line gives.
    public static func detect(command: [String]) -> DriveOptions {
        let tool = command.first?.split(separator: "/").last.map(String.init) ?? ""
        var o = DriveOptions(discardUnmap: tool.hasPrefix("qemu-io"))
        var i = 1
        while i < command.count {
            let a = command[i]
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
                    default: break
                    }
                }
            }
            i += 1
        }
        return o
    }

    private static func unmaps(_ v: String) -> Bool { v == "unmap" || v == "on" }

    /// A QEMU size ("8192", "8K", "1M", "1G").
    static func bytes(_ v: String) -> UInt64? {
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
