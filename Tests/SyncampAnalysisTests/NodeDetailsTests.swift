import XCTest
@testable import SyncampAnalysis

/// NodeDetails keeps only the facts set, packed in key order: every field must read back what
/// was written, in any order of writes, past the six values stored inline, and after removals.
final class NodeDetailsTests: XCTestCase {
    /// Every field set, in reverse declaration order, then read back.
    func testEveryFieldReadsBackWhatWasSet() {
        var d = NodeDetails()
        d.sector = 77
        d.rwbs = RWBS(packed: 0x4657) // "WF"
        d.blocksLogged = 12
        d.blocks = 11
        d.transaction = 4242
        d.generation = 9
        d.lsn = -5
        d.datasync = false
        d.inode = 1 << 40
        d.dev = 0x80_0001
        d.userData = 0xdead_beef_0000_0001
        d.syscall = .ioUringFsync
        d.fd = 9
        d.submitCoroutine = 0x5600_0000_1000
        d.node = 0x5600_0000_2000
        d.job = 0x5600_0000_3000
        d.format = FormatName(raw: 0x3277_6f63_71) // "qcow2"
        d.l1Index = 3
        d.index = 17
        d.dependency = .refcount
        d.dependsOnFlush = true
        d.depends = .l2
        d.cache = .unknown
        d.bytes = 65536
        d.offset = UInt64.max
        d.coroutine = 0x5600_0000_4000

        XCTAssertEqual(d.sector, 77)
        XCTAssertEqual(d.rwbs?.description, "WF")
        XCTAssertEqual(d.blocksLogged, 12)
        XCTAssertEqual(d.blocks, 11)
        XCTAssertEqual(d.transaction, 4242)
        XCTAssertEqual(d.generation, 9)
        XCTAssertEqual(d.lsn, -5)
        XCTAssertEqual(d.datasync, false)
        XCTAssertEqual(d.inode, 1 << 40)
        XCTAssertEqual(d.dev, 0x80_0001)
        XCTAssertEqual(d.userData, 0xdead_beef_0000_0001)
        XCTAssertEqual(d.syscall, .ioUringFsync)
        XCTAssertEqual(d.fd, 9)
        XCTAssertEqual(d.submitCoroutine, 0x5600_0000_1000)
        XCTAssertEqual(d.node, 0x5600_0000_2000)
        XCTAssertEqual(d.job, 0x5600_0000_3000)
        XCTAssertEqual(d.format?.description, "qcow2")
        XCTAssertEqual(d.l1Index, 3)
        XCTAssertEqual(d.index, 17)
        XCTAssertEqual(d.dependency, .refcount)
        XCTAssertTrue(d.dependsOnFlush)
        XCTAssertEqual(d.depends, .l2)
        XCTAssertEqual(d.cache, .unknown)
        XCTAssertEqual(d.bytes, 65536)
        XCTAssertEqual(d.offset, UInt64.max)
        XCTAssertEqual(d.coroutine, 0x5600_0000_4000)
        XCTAssertEqual(d.strings.count, 26)
    }

    /// Equality is by the facts, not by the order they were set in; overwriting and clearing work.
    func testOrderOfWritesDoesNotMatterAndClearingRemoves() {
        var a = NodeDetails()
        a.fd = 4
        a.job = 1
        a.transaction = 8
        a.coroutine = 2
        var b = NodeDetails()
        b.coroutine = 2
        b.transaction = 8
        b.job = 1
        b.fd = 4
        XCTAssertEqual(a, b)
        b.fd = 5
        XCTAssertNotEqual(a, b)
        b.fd = 4
        XCTAssertEqual(a, b)
        a.job = nil
        XCTAssertNil(a.job)
        XCTAssertEqual(a.coroutine, 2)
        XCTAssertEqual(a.fd, 4)
        XCTAssertEqual(a.transaction, 8)
        XCTAssertNotEqual(a, b)
        a.dependsOnFlush = true
        a.dependsOnFlush = false
        b.job = nil
        XCTAssertEqual(a, b)
        XCTAssertEqual(NodeDetails(), NodeDetails())
    }

    /// Past six facts the rest spill out of line; removing one in the middle of a full set keeps
    /// every other value in its place.
    func testSpillAndRemoveKeepEveryOtherValue() {
        var d = NodeDetails()
        let setters: [(inout NodeDetails, UInt64) -> Void] = [
            { $0.coroutine = $1 }, { $0.offset = $1 }, { $0.bytes = $1 }, { $0.job = $1 }, { $0.node = $1 },
            { $0.submitCoroutine = $1 }, { $0.userData = $1 }, { $0.inode = $1 }, { $0.generation = $1 },
        ]
        for (i, set) in setters.enumerated() { set(&d, UInt64(100 + i)) }
        d.offset = nil
        d.inode = nil
        XCTAssertEqual(d.coroutine, 100)
        XCTAssertNil(d.offset)
        XCTAssertEqual(d.bytes, 102)
        XCTAssertEqual(d.job, 103)
        XCTAssertEqual(d.node, 104)
        XCTAssertEqual(d.submitCoroutine, 105)
        XCTAssertEqual(d.userData, 106)
        XCTAssertNil(d.inode)
        XCTAssertEqual(d.generation, 108)
        d.offset = 1
        XCTAssertEqual(d.offset, 1)
        XCTAssertEqual(d.generation, 108)
        XCTAssertEqual(d.strings.map(\.key), ["arg", "bs", "bytes", "co", "coroutine", "generation", "offset", "user_data"])
    }
}
