#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Why an image could not be read.
public struct Qcow2Error: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Reads a qcow2 image's header, L1/L2 tables and refcounts into an `ImageState`, read-only.
///
/// Follows docs/interop/qcow2.txt (QEMU 7.2): a big-endian header, an L1
/// table of L2 table offsets (bit 63 = COPIED), L2 entries (bit 63 COPIED,
/// bit 62 compressed, bits 9-55 host offset, bit 0 reads as zero), a
/// refcount table of refcount block offsets. Every offset is checked against
/// the file size; the file is opened O_RDONLY, and with O_NOFOLLOW when
/// asked (paths that come from the traced process).
public enum Qcow2Reader {
    public static let magic: [UInt8] = [0x51, 0x46, 0x49, 0xfb]  // "QFI\xfb"

    /// Whether the file starts with the qcow2 magic.
    public static func isQcow2(path: String) -> Bool {
        guard let h = try? FileBytes(path: path, noFollow: false) else { return false }
        return (try? h.read(0, 4)) == magic
    }

    /// Reads the image at `path`; `name` is the path recorded in the state (as the target named it).
    public static func read(path: String, name: String? = nil, noFollow: Bool = false) throws -> ImageState {
        let f = try FileBytes(path: path, noFollow: noFollow)
        let h = try f.read(0, 104)
        guard Array(h[0..<4]) == magic else { throw Qcow2Error(description: "\(path) is not a qcow2 image (no QFI magic)") }
        let version = Int(be32(h, 4))
        guard version == 2 || version == 3 else { throw Qcow2Error(description: "\(path): qcow2 version \(version) is not supported") }
        let clusterBits = Int(be32(h, 20))
        guard (9...21).contains(clusterBits) else { throw Qcow2Error(description: "\(path): cluster_bits \(clusterBits) is out of range") }
        let clusterSize = UInt64(1) << UInt64(clusterBits)
        let size = be64(h, 24)
        let l1Size = Int(be32(h, 36))
        let l1Offset = be64(h, 40)
        let reftableOffset = be64(h, 48)
        let reftableClusters = UInt64(be32(h, 56))
        var incompatible: UInt64 = 0, compatible: UInt64 = 0, refcountOrder = 4
        if version == 3 {
            incompatible = be64(h, 72)
            compatible = be64(h, 80)
            refcountOrder = Int(be32(h, 96))
        }
        guard (0...6).contains(refcountOrder) else { throw Qcow2Error(description: "\(path): refcount_order \(refcountOrder) is out of range") }
        let extendedL2 = incompatible & (1 << 4) != 0
        let entryBytes: UInt64 = extendedL2 ? 16 : 8
        let l2Entries = clusterSize / entryBytes
        let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00

        guard l1Size <= 1 << 26, reftableClusters <= 1 << 20 else { throw Qcow2Error(description: "\(path): table sizes are absurd") }
        let l1 = try f.read(l1Offset, UInt64(l1Size) * 8)
        var l2Tables: [Int] = []
        var ranges: [ImageState.ClusterRange] = []
        var subranges: [ImageState.ClusterRange] = []
        for i in 0..<l1Size {
            let e = be64(l1, i * 8)
            let l2Offset = e & offsetMask
            guard l2Offset != 0 else { continue }
            let copied = e >> 63 == 1
            if copied { l2Tables.append(i) }
            let l2 = try f.read(l2Offset, clusterSize)
            for j in 0..<Int(l2Entries) {
                let entry = be64(l2, j * Int(entryBytes))
                let compressed = entry & (1 << 62) != 0
                let allocated = !compressed && entry & offsetMask != 0 && entry >> 63 == 1
                guard allocated else { continue }
                let cluster = UInt64(i) * l2Entries + UInt64(j)
                if extendedL2 {
                    // The second half of an extended entry: bits 0-31 say which subclusters are allocated.
                    let bitmap = be64(l2, j * Int(entryBytes) + 8)
                    for sc in 0..<32 where bitmap & (1 << UInt64(sc)) != 0 {
                        let index = cluster * 32 + UInt64(sc)
                        if let last = subranges.last, last.end == index {
                            subranges[subranges.count - 1].end = index + 1
                        } else {
                            subranges.append(.init(start: index, end: index + 1))
                        }
                    }
                }
                if let last = ranges.last, last.end == cluster {
                    ranges[ranges.count - 1].end = cluster + 1
                } else {
                    ranges.append(.init(start: cluster, end: cluster + 1))
                }
            }
        }
        let reftableEntries = Int(reftableClusters * clusterSize / 8)
        let reftable = try f.read(reftableOffset, reftableClusters * clusterSize)
        var refblocks: [Int] = []
        var hostClusters: UInt64 = 0
        let refcountBits = UInt64(1) << UInt64(refcountOrder)
        let perBlock = clusterSize * 8 / refcountBits
        for i in 0..<reftableEntries {
            let off = be64(reftable, i * 8) & ~UInt64(0x1ff)
            guard off != 0 else { continue }
            refblocks.append(i)
            let block = try f.read(off, clusterSize)
            for k in stride(from: Int(perBlock) - 1, through: 0, by: -1) where refcount(block, k, refcountBits) != 0 {
                hostClusters = max(hostClusters, UInt64(i) * perBlock + UInt64(k) + 1)
                break
            }
        }
        var state = ImageState(path: name ?? path, size: size, clusterBits: clusterBits, refcountOrder: refcountOrder,
                          version: version, lazyRefcounts: compatible & 1 != 0, extendedL2: extendedL2,
                          dirty: incompatible & 1 != 0, hasBackingFile: be64(h, 8) != 0, encrypted: be32(h, 32) != 0,
                          l1Size: l1Size, l2Tables: l2Tables, allocatedClusters: ranges, refcountBlocks: refblocks,
                          refcountTableEntries: reftableEntries, hostClusters: hostClusters, fileSize: f.size)
        if extendedL2 { state.allocatedSubclusters = subranges }
        if state.hasBackingFile { state.backingData = try? dataRanges(path: path, noFollow: noFollow, depth: 0) }
        state.persistentBitmaps = version == 3 ? persistentBitmaps(f, header: h, clusterSize: clusterSize) : 0
        return state
    }

    /// `nb_bitmaps` of the bitmaps header extension (magic 0x23852875) when autoclear bit 0 says it
    /// is valid, else 0; nil when the extensions cannot be read. Extensions follow the header
    /// (`header_length` at byte 100), each `magic, length, data` padded to 8 bytes, up to magic 0.
    static func persistentBitmaps(_ f: FileBytes, header h: [UInt8], clusterSize: UInt64) -> Int? {
        guard h.count >= 104 else { return nil }
        let autoclear = be64(h, 88)
        var at = UInt64(be32(h, 100))
        while at + 8 <= clusterSize {
            guard let ext = try? f.read(at, 8) else { return nil }
            let magic = be32(ext, 0), length = UInt64(be32(ext, 4))
            if magic == 0 { return 0 }
            if magic == 0x2385_2875 {
                guard autoclear & 1 != 0 else { return 0 }
                guard length >= 4, let data = try? f.read(at + 8, 4) else { return nil }
                return Int(be32(data, 0))
            }
            at += 8 + (length + 7) / 8 * 8
        }
        return nil
    }

    /// The backing chains syncamp follows at most (QEMU's own limit is far higher; a deeper chain is left unknown).
    static let maxChainDepth = 16

    /// The guest byte ranges of the image at `path` that read as data with `want_zero` off
    /// (bdrv_co_common_block_status_above, io.c): a qcow2 cluster with a host offset or
    /// compressed is data, one with the zero flag is zero, an unallocated one is its backing
    /// file's (zero past that file's end, or without one); a raw image is data up to its size.
    /// nil for other formats, extended L2 (subcluster status) and chains too deep.
    static func dataRanges(path: String, noFollow: Bool, depth: Int) throws -> [ImageState.ClusterRange]? {
        guard depth <= maxChainDepth else { return nil }
        let f = try FileBytes(path: path, noFollow: noFollow)
        guard f.size >= 4, try f.read(0, 4) == magic else {
            // No qcow2 magic: a raw image only if no other format's magic is there (vmdk, vdi, vhdx, qed).
            let head = f.size >= 8 ? try f.read(0, 8) : []
            let others: [[UInt8]] = [[0x4b, 0x44, 0x4d, 0x56], [0x51, 0x46, 0x49, 0x00], [0x76, 0x68, 0x64, 0x78], [0x3c, 0x3c, 0x3c, 0x20]]
            if others.contains(where: { head.starts(with: $0) }) || head.starts(with: Array("conectix".utf8)) { return nil }
            return f.size > 0 ? [.init(start: 0, end: f.size)] : []
        }
        let h = try f.read(0, 104)
        let version = Int(be32(h, 4))
        let clusterBits = Int(be32(h, 20))
        guard version == 2 || version == 3, (9...21).contains(clusterBits) else { return nil }
        if version == 3, be64(h, 72) & (1 << 4) != 0 { return nil }  // extended L2
        let cs = UInt64(1) << UInt64(clusterBits)
        let size = be64(h, 24)
        let l1Size = Int(be32(h, 36))
        guard l1Size <= 1 << 26 else { return nil }
        var backing: [ImageState.ClusterRange]?
        let backingOffset = be64(h, 8), backingLength = UInt64(be32(h, 16))
        if backingOffset != 0 {
            guard backingLength > 0, backingLength <= 1023 else { return nil }
            let name = String(decoding: try f.read(backingOffset, backingLength), as: UTF8.self)
            guard let chained = try dataRanges(path: backingPath(name, of: path), noFollow: noFollow, depth: depth + 1) else { return nil }
            backing = chained
        }
        let l1 = try f.read(be64(h, 40), UInt64(l1Size) * 8)
        let perTable = cs / 8
        let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
        var out: [ImageState.ClusterRange] = []
        func add(_ start: UInt64, _ end: UInt64) {
            let e = min(end, size)
            guard start < e else { return }
            if let last = out.last, last.end >= start { out[out.count - 1].end = max(last.end, e) } else { out.append(.init(start: start, end: e)) }
        }
        func fromBacking(_ start: UInt64, _ end: UInt64) {
            for r in backing ?? [] where r.end > start && r.start < end { add(max(r.start, start), min(r.end, end)) }
        }
        for i in 0..<l1Size {
            let tableStart = UInt64(i) * perTable * cs
            guard tableStart < size else { break }
            let l2Offset = be64(l1, i * 8) & offsetMask
            guard l2Offset != 0 else {
                fromBacking(tableStart, tableStart + perTable * cs)
                continue
            }
            let l2 = try f.read(l2Offset, cs)
            for j in 0..<Int(perTable) {
                let start = tableStart + UInt64(j) * cs
                guard start < size else { break }
                let entry = be64(l2, j * 8)
                if entry & (1 << 62) != 0 || entry & offsetMask != 0 && entry & 1 == 0 {
                    add(start, start + cs)  // compressed, or a host cluster without the zero flag
                } else if entry & 1 == 0 {
                    fromBacking(start, start + cs)  // unallocated: the backing file's
                }  // the zero flag: reads as zero
            }
        }
        return out
    }

    /// A backing file name as QEMU resolves it: relative to the directory of the image naming it;
    /// an absolute one inside the root the image path is under (/proc/PID/root/...).
    static func backingPath(_ name: String, of image: String) -> String {
        if name.hasPrefix("/") {
            if image.hasPrefix("/proc/"), let r = image.range(of: "/root/") { return String(image[..<r.lowerBound]) + "/root" + name }
            return name
        }
        let dir = image.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (dir.isEmpty ? "" : dir + "/") + name
    }

    private static func refcount(_ b: [UInt8], _ k: Int, _ bits: UInt64) -> UInt64 {
        switch bits {
        case 64: return be64(b, k * 8)
        case 32: return UInt64(be32(b, k * 4))
        case 16: return UInt64(b[k * 2]) << 8 | UInt64(b[k * 2 + 1])
        case 8: return UInt64(b[k])
        default:
            let bitIndex = k * Int(bits)
            return UInt64(b[bitIndex / 8] >> UInt8(bitIndex % 8)) & ((1 << bits) - 1)
        }
    }

    static func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
        b[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func be64(_ b: [UInt8], _ at: Int) -> UInt64 {
        b[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Bounds-checked reads from a file opened read-only.
final class FileBytes {
    let fd: Int32
    let path: String
    let size: UInt64

    init(path: String, noFollow: Bool) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0))
        guard fd >= 0 else { throw Qcow2Error(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        fstat(fd, &st)
        size = UInt64(st.st_size)
        self.path = path
    }

    deinit { close(fd) }

    /// Reads `count` bytes at `offset`; parts past the end of a sparse file read as zeros only within the file size.
    func read(_ offset: UInt64, _ count: UInt64) throws -> [UInt8] {
        guard count <= 64 << 20, offset <= size, count <= size - offset else {
            throw Qcow2Error(description: "\(path): \(count) bytes at offset \(offset) run past the end of the \(size)-byte file")
        }
        var out = [UInt8](repeating: 0, count: Int(count))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Qcow2Error(description: "\(path): read failed at \(offset + UInt64(done))") }
            done += n
        }
        return out
    }
}
