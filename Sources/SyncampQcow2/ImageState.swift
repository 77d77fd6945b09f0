/// What a qcow2 image holds when a capture starts: the metadata the reference model needs.
///
/// Read from the image file (never written); recorded in the capture so the
/// analysis does not depend on the image still being there or unchanged.
public struct ImageState: Codable, Sendable, Equatable {
    /// The image file as the traced process named it.
    public var path: String
    /// Virtual disk size in bytes.
    public var size: UInt64
    public var clusterBits: Int
    /// log2 of the refcount width in bits (4 = 16-bit refcounts, the default).
    public var refcountOrder: Int
    public var version: Int
    /// Compatible feature bit 0.
    public var lazyRefcounts: Bool
    /// Incompatible feature bit 4: 128-bit L2 entries with subcluster bitmaps.
    public var extendedL2: Bool
    /// Incompatible feature bit 0: the image was left dirty (lazy refcounts).
    public var dirty: Bool
    public var hasBackingFile: Bool
    public var encrypted: Bool
    public var l1Size: Int
    /// L1 indexes whose L2 table exists and is not shared (COPIED).
    public var l2Tables: [Int]
    /// Guest cluster ranges (start, end exclusive) whose data cluster is allocated and not shared,
    /// so a write to them needs no allocation.
    public var allocatedClusters: [ClusterRange]
    /// Extended L2 only: allocated subcluster ranges (32 subclusters per cluster), from the L2 bitmaps.
    public var allocatedSubclusters: [ClusterRange]?
    /// Refcount-table indexes whose refcount block exists.
    public var refcountBlocks: [Int]
    public var refcountTableEntries: Int
    /// Host clusters in use: one past the highest cluster with a non-zero refcount.
    public var hostClusters: UInt64
    public var fileSize: UInt64
    /// With a backing file: the guest byte ranges [start, end) that do not read as zero through
    /// this image and its backing chain as QEMU's bdrv_co_is_zero_fast sees them (a data or
    /// compressed cluster anywhere down the chain, a raw backing file's bytes); a partial
    /// allocating write whose COW areas touch them copies them (a real COW, F3). nil without a
    /// backing file or when the chain could not be read (then the model cannot tell).
    public var backingData: [ClusterRange]?
    /// The persistent dirty bitmaps the image holds (the bitmaps header extension's `nb_bitmaps`,
    /// counted when its autoclear bit says the extension is valid; docs/interop/qcow2.txt): QEMU
    /// marks them in use at open and stores them at close, with syncs of their own (F16). nil in
    /// captures that predate it.
    public var persistentBitmaps: Int?

    /// A run of guest clusters.
    public struct ClusterRange: Codable, Sendable, Equatable {
        public var start: UInt64
        public var end: UInt64
        public init(start: UInt64, end: UInt64) {
            self.start = start
            self.end = end
        }
    }

    /// Whether the fields are within what qcow2 allows (a state read from a damaged capture may not be).
    public var isPlausible: Bool {
        (9...21).contains(clusterBits) && (0...6).contains(refcountOrder) && size <= 1 << 60
            && hostClusters <= 1 << 50 && l1Size >= 0 && refcountTableEntries >= 0
            && allocatedClusters.allSatisfy { $0.start <= $0.end && $0.end <= 1 << 52 }
            && (allocatedSubclusters ?? []).allSatisfy { $0.start <= $0.end && $0.end <= 1 << 57 }
    }

    // Inlinable: the model asks for these per op, from another module.
    @inlinable public var clusterSize: UInt64 { 1 << UInt64(clusterBits) }
    /// Guest bytes one L2 table maps: cluster_size^2 / 8 (/ 16 with extended L2).
    @inlinable public var bytesPerL2Table: UInt64 { clusterSize * (clusterSize / (extendedL2 ? 16 : 8)) }
    /// Host clusters one refcount block covers: 8 * cluster_size / refcount_bits.
    @inlinable public var clustersPerRefcountBlock: UInt64 { clusterSize * 8 / (UInt64(1) << UInt64(refcountOrder)) }

    public init(path: String, size: UInt64, clusterBits: Int, refcountOrder: Int = 4, version: Int = 3,
                lazyRefcounts: Bool = false, extendedL2: Bool = false, dirty: Bool = false,
                hasBackingFile: Bool = false, encrypted: Bool = false, l1Size: Int, l2Tables: [Int] = [],
                allocatedClusters: [ClusterRange] = [], refcountBlocks: [Int] = [0], refcountTableEntries: Int,
                hostClusters: UInt64, fileSize: UInt64) {
        self.path = path
        self.size = size
        self.clusterBits = clusterBits
        self.refcountOrder = refcountOrder
        self.version = version
        self.lazyRefcounts = lazyRefcounts
        self.extendedL2 = extendedL2
        self.dirty = dirty
        self.hasBackingFile = hasBackingFile
        self.encrypted = encrypted
        self.l1Size = l1Size
        self.l2Tables = l2Tables
        self.allocatedClusters = allocatedClusters
        self.refcountBlocks = refcountBlocks
        self.refcountTableEntries = refcountTableEntries
        self.hostClusters = hostClusters
        self.fileSize = fileSize
    }
}

extension ImageState {
    /// A freshly created image (`qemu-img create`): header, refcount table, one refcount block, L1; nothing allocated.
    public static func fresh(path: String, size: UInt64, clusterBits: Int = 16, refcountOrder: Int = 4,
                             extendedL2: Bool = false, lazyRefcounts: Bool = false) -> ImageState {
        let cluster = UInt64(1) << UInt64(clusterBits)
        let perTable = cluster * (cluster / (extendedL2 ? 16 : 8))
        let l1Size = Int((size + perTable - 1) / perTable)
        let l1Clusters = max(1, (UInt64(l1Size) * 8 + cluster - 1) / cluster)
        return ImageState(path: path, size: size, clusterBits: clusterBits, refcountOrder: refcountOrder,
                          lazyRefcounts: lazyRefcounts, extendedL2: extendedL2, l1Size: l1Size,
                          refcountTableEntries: Int(cluster / 8), hostClusters: 3 + l1Clusters, fileSize: (3 + l1Clusters) * cluster)
    }
}
