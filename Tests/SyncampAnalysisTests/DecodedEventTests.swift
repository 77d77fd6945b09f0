@testable import SyncampAnalysis
import XCTest

/// Decoded events are copied several times per event (into the builder, into an op's leaves):
/// they must stay plain bytes.
final class DecodedEventTests: XCTestCase {
    /// A field holding a reference (a String inside `FileSystemKind` did) makes every copy and
    /// destroy of an event an outlined switch over its payload: 4.6% of the analyzer's instructions.
    func testADecodedEventCopiesAsPlainBytes() {
        XCTAssertTrue(_isPOD(DecodedEvent.self))
        XCTAssertTrue(_isPOD(DecodedEvent.Payload.self))
    }

    /// `enum syncamp_fs` of a storage-stack event's probe id.
    func testTheFileSystemComesFromTheProbeID() {
        XCTAssertEqual(DecodedEvent.FileSystem(eventFS: 0), .ext4)
        XCTAssertEqual(DecodedEvent.FileSystem(eventFS: 1), .xfs)
        XCTAssertEqual(DecodedEvent.FileSystem(eventFS: 2), .btrfs)
        XCTAssertEqual(DecodedEvent.FileSystem(eventFS: 9), .ext4, "an unknown value reads as ext4, as before")
        XCTAssertEqual(StorageLinker.syncSymbol(.xfs), "xfs_file_fsync")
    }
}
