import Foundation
import SyncampQcow2
import XCTest

/// The image reader on images made by qemu-img and changed by qemu-io, and on damaged files.
final class Qcow2ReaderTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-qcow2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// qemu-img and qemu-io: the testbed's, else Debian's (qemu-utils).
    func tool(_ name: String) throws -> String {
        let testbed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".testbed/bin/\(name)").path
        for p in [testbed, "/usr/bin/\(name)"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        throw Prerequisite.unavailable("\(name) is not installed (root/testbed: scripts/testbed.sh --deps installs qemu-utils)")
    }

    func run(_ path: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "\(path) \(args)")
    }

    func image(_ name: String, _ size: String = "1G", options: String? = nil) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try run(try tool("qemu-img"), ["create", "-q", "-f", "qcow2"] + (options.map { ["-o", $0] } ?? []) + [path, size])
        return path
    }

    /// Persistent bitmaps are counted from the bitmaps header extension (`qemu-img bitmap --add`).
    func testPersistentBitmapsAreCounted() throws {
        let path = try image("bitmaps.qcow2")
        XCTAssertEqual(try Qcow2Reader.read(path: path).persistentBitmaps, 0)
        try run(try tool("qemu-img"), ["bitmap", "--add", path, "b0"])
        try run(try tool("qemu-img"), ["bitmap", "--add", path, "b1"])
        XCTAssertEqual(try Qcow2Reader.read(path: path).persistentBitmaps, 2)
    }

    /// A fresh image: header, refcount table, refcount block, L1 in clusters 0-3; nothing allocated.
    func testFreshImage() throws {
        let s = try Qcow2Reader.read(path: try image("fresh.qcow2"))
        XCTAssertEqual(s.size, 1 << 30)
        XCTAssertEqual(s.clusterBits, 16)
        XCTAssertEqual(s.refcountOrder, 4)
        XCTAssertEqual(s.l1Size, 2)
        XCTAssertEqual(s.l2Tables, [])
        XCTAssertEqual(s.allocatedClusters, [])
        XCTAssertEqual(s.refcountBlocks, [0])
        XCTAssertEqual(s.hostClusters, 4)
        XCTAssertFalse(s.lazyRefcounts)
        XCTAssertEqual(s.bytesPerL2Table, 512 << 20)
        var fresh = ImageState.freshForTest(path: s.path, size: s.size, fileSize: s.fileSize)
        fresh.persistentBitmaps = 0
        XCTAssertEqual(s, fresh)
    }

    /// After qemu-io writes 4 KiB at 0 and at 600 MiB: two L2 tables, two allocated clusters, more host clusters.
    func testAfterWrites() throws {
        let path = try image("written.qcow2")
        try run(try tool("qemu-io"), ["-f", "qcow2", "-t", "writeback", "-c", "write 0 4k", "-c", "write 600M 4k", path])
        let s = try Qcow2Reader.read(path: path)
        XCTAssertEqual(s.l2Tables, [0, 1])
        XCTAssertEqual(s.allocatedClusters, [.init(start: 0, end: 1), .init(start: 9600, end: 9601)])
        XCTAssertEqual(s.hostClusters, 4 + 2 + 2)
    }

    func testOptionsAndFeatureBits() throws {
        let lazy = try Qcow2Reader.read(path: try image("lazy.qcow2", options: "lazy_refcounts=on"))
        XCTAssertTrue(lazy.lazyRefcounts)
        let small = try Qcow2Reader.read(path: try image("small.qcow2", "64M", options: "cluster_size=4096,refcount_bits=64"))
        XCTAssertEqual(small.clusterBits, 12)
        XCTAssertEqual(small.refcountOrder, 6)
        XCTAssertEqual(small.clustersPerRefcountBlock, 512)
        let ext = try Qcow2Reader.read(path: try image("ext.qcow2", options: "extended_l2=on"))
        XCTAssertTrue(ext.extendedL2)
        XCTAssertEqual(ext.bytesPerL2Table, 256 << 20)
        XCTAssertEqual(ext.allocatedSubclusters, [])
        let pre = try Qcow2Reader.read(path: try image("pre.qcow2", options: "preallocation=metadata"))
        XCTAssertEqual(pre.l2Tables, [0, 1])
        XCTAssertEqual(pre.allocatedClusters, [.init(start: 0, end: 16384)])
    }

    /// Not a qcow2 file, a truncated one, a header pointing past the end: an error naming the file, no crash.
    func testDamagedFiles() throws {
        let good = try image("good.qcow2")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let notQcow = dir.appendingPathComponent("text").path
        try Data("hello, this is not an image".utf8).write(to: URL(fileURLWithPath: notQcow))
        XCTAssertFalse(Qcow2Reader.isQcow2(path: notQcow))
        XCTAssertThrowsError(try Qcow2Reader.read(path: notQcow)) { XCTAssertTrue("\($0)".contains(notQcow)) }
        for cut in [0, 50, 103, 200, 70_000, 200_000] where cut < bytes.count {
            let p = dir.appendingPathComponent("cut-\(cut)").path
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try Qcow2Reader.read(path: p), "cut at \(cut)")
        }
        var patched = bytes
        patched.replaceSubrange(40..<48, with: [0x7f, 0, 0, 0, 0, 0, 0, 0])  // L1 table far past the end
        let p = dir.appendingPathComponent("far-l1").path
        try patched.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Qcow2Reader.read(path: p)) { XCTAssertTrue("\($0)".contains("past the end"), "\($0)") }
    }

    /// O_NOFOLLOW: a symlink is refused when the path comes from a traced process.
    func testNoFollowRefusesSymlinks() throws {
        let target = try image("real.qcow2")
        let link = dir.appendingPathComponent("link.qcow2").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        XCTAssertNoThrow(try Qcow2Reader.read(path: link))
        XCTAssertThrowsError(try Qcow2Reader.read(path: link, noFollow: true))
    }
}

extension ImageState {
    /// `fresh` with the file size a real qemu-img image has.
    static func freshForTest(path: String, size: UInt64, fileSize: UInt64) -> ImageState {
        var s = ImageState.fresh(path: path, size: size)
        s.fileSize = fileSize
        return s
    }
}
