import Foundation
import SyncampELF
import XCTest

/// `threadPointerOffset(ofThreadLocal:)` against the offset a running program measures itself.
final class ThreadLocalTests: XCTestCase {
    /// A PIE with thread-locals of mixed sizes and alignments prints where each sits relative to %fs:0.
    func testOffsetMatchesTheRunningProgram() throws {
        let dir = try ToolRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("tls.c")
        try """
            #include <stdio.h>
            __thread char small_one;
            __thread long pad[5] __attribute__((aligned(32)));
            static __thread void *current_co;
            int main(void) {
                char *tp;
                __asm__("mov %%fs:0, %0" : "=r"(tp));
                printf("%ld %ld\\n", (long)((char *)&current_co - tp), (long)(&small_one - tp));
                return (int)(long)current_co + pad[0];
            }
            """.write(to: source, atomically: true, encoding: .utf8)
        let exe = dir.appendingPathComponent("tls").path
        try ToolRunner.run("cc", ["-O0", "-fPIE", "-pie", "-o", exe, source.path])
        let measured = try ToolRunner.run(exe, []).split(separator: " ").map { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let elf = try ELFFile(path: exe)
        XCTAssertEqual(elf.threadPointerOffset(ofThreadLocal: "current_co"), measured[0])
        XCTAssertEqual(elf.threadPointerOffset(ofThreadLocal: "small_one"), measured[1])
        XCTAssertEqual(try BinutilsOracle(path: exe).threadPointerOffset(ofThreadLocal: "current_co"), measured[0],
                       "the readelf oracle the testbed test relies on agrees with the running program")
        XCTAssertNil(elf.threadPointerOffset(ofThreadLocal: "main"), "a function is not a thread-local")
        XCTAssertNil(elf.threadPointerOffset(ofThreadLocal: "no_such_variable"))
    }

    /// The testbed QEMU's coroutine-local `co_tls_current`, which the collector reads at every probe.
    func testTestbedQemuHasCoroutineTLS() throws {
        let testbed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".testbed/bin/qemu-io").path
        guard FileManager.default.isExecutableFile(atPath: testbed) else {
            throw Prerequisite.unavailable("the QEMU testbed is not built (root: scripts/testbed.sh)")
        }
        let offset = try XCTUnwrap(try ELFFile(path: testbed).threadPointerOffset(ofThreadLocal: "co_tls_current"))
        let readelf = try XCTUnwrap(try BinutilsOracle(path: testbed).threadPointerOffset(ofThreadLocal: "co_tls_current"),
                                    "readelf shows no TLS segment or no co_tls_current")
        XCTAssertEqual(offset, readelf, "against readelf's symbol value and TLS segment")
    }
}
