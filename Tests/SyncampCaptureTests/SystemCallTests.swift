#if canImport(Glibc)
import Glibc
#endif
import SyncampSystem
import SystemPackage
import XCTest

/// The system calls swift-system does not wrap: typed errors, and EINTR retried in the one place.
final class SystemCallTests: XCTestCase {
    func testAnInterruptedCallIsRetriedAndAnotherErrorIsThrownTyped() {
        var calls = 0
        let r = try? SystemCall.retryingInterrupts { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        XCTAssertEqual(r, 7)
        XCTAssertEqual(calls, 3)
        XCTAssertThrowsError(try SystemCall.retryingInterrupts { () -> Int32 in errno = EBADF; return -1 }) { error in
            XCTAssertEqual(error as? Errno, .badFileDescriptor)
        }
    }

    func testSignalZeroFindsThisProcessAndNotAMissingOne() throws {
        try SystemCall.kill(getpid(), 0)
        // Above the largest pid Linux hands out (pid_max is at most 2^22).
        XCTAssertThrowsError(try SystemCall.kill(1 << 30, 0)) { XCTAssertEqual($0 as? Errno, .noSuchProcess) }
    }

    func testSyncAndCloseOfAFileSucceedAndACloseOfAClosedOneFails() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-syscall-\(getpid())").path
        defer { unlink(path) }
        let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite])
        _ = try fd.writeAll("x".utf8)
        try fd.sync()
        try fd.closeReportingErrors()
        XCTAssertThrowsError(try fd.closeReportingErrors()) { XCTAssertEqual($0 as? Errno, .badFileDescriptor) }
    }
}
