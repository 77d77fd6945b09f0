@testable import SyncampAnalysis
import SyncampProbes
import XCTest

/// A node's format name, read as 8 bytes of `bs->drv->format_name`, matched without a string.
final class FormatNameTests: XCTestCase {
    /// The 8 bytes a probe reads: the name, its NUL, then whatever follows it in QEMU's .rodata.
    private func read(_ bytes: [UInt8]) -> FormatName {
        FormatName(raw: (bytes + Array(repeating: 0, count: 8)).prefix(8).enumerated().reduce(0) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
    }

    func testReadsMatchesTheNameUpToItsNUL() {
        let qcow2 = read(Array("qcow2".utf8) + [0, 0x72, 0x61])  // "qcow2\0ra": the next string's bytes after the NUL
        XCTAssertEqual(qcow2.description, "qcow2")
        XCTAssertTrue(qcow2.reads(FormatName.Pattern("qcow2")!))
        XCTAssertFalse(qcow2.reads(FormatName.Pattern("qcow")!), "qcow is a prefix of qcow2, not its name")
        XCTAssertFalse(read(Array("qcow".utf8) + [0]).reads(FormatName.Pattern("qcow2")!))
        XCTAssertTrue(read(Array("qcow".utf8) + [0, 0x71]).reads(FormatName.Pattern("qcow")!))
    }

    func testEightByteNamesAndLongerOnes() {
        let eight = read(Array("parallel".utf8))
        XCTAssertEqual(eight.description, "parallel")
        XCTAssertTrue(eight.reads(FormatName.Pattern("parallel")!))
        XCTAssertNil(FormatName.Pattern("parallels"), "a probe reads 8 bytes: a 9-byte name can never be read whole")
    }

    /// Every name the builder compares: `reads` agrees with `description ==` for the names read.
    func testReadsAgreesWithDescription() {
        for name in RequestEntry.otherImageFormats.union(["qcow2", "file"]) {
            guard let pattern = FormatName.Pattern(name) else { continue }
            for other in RequestEntry.otherImageFormats.union(["qcow2", "file", "host_device"]) {
                let f = read(Array(other.utf8) + [0, 0x41, 0x42, 0x43])
                XCTAssertEqual(f.reads(pattern), f.description == name, "\(other) read against \(name)")
            }
        }
    }
}
