import Foundation
import SyncampELF
import SyncampMachineCode
import XCTest

/// Probe-site choice on hand-made prologues and on real QEMU builds, checked against objdump.
final class ProbeSiteTests: XCTestCase {
    let d = try! Disassembler()

    func site(_ bytes: [UInt8], whole: Bool = true) throws -> ProbeSite {
        try XCTUnwrap(ProbeSite.choose(code: bytes, entry: 0x1000, wholeFunction: whole, disassembler: d))
    }

    func testPushAtTheEntryStaysThere() throws {
        let s = try site([0x55, 0x48, 0x89, 0xe5, 0xc3])  // push rbp; mov rbp, rsp; ret
        XCTAssertEqual(s.offsetFromEntry, 0)
        XCTAssertEqual(s.cost, .emulated)
        XCTAssertEqual(s.instruction, "push rbp")
    }

    /// endbr64; push rbp: the site moves to the push, four bytes in.
    func testEndbr64IsSkippedToThePush() throws {
        let s = try site([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0xc3])
        XCTAssertEqual(s.offsetFromEntry, 4)
        XCTAssertEqual(s.cost, .emulated)
        XCTAssertNil(s.keptAtEntryBecause)
    }

    /// sub rsp, 8; push r12: the stack pointer moves, which the probe does not read.
    func testStackAdjustmentIsSkipped() throws {
        let s = try site([0x48, 0x83, 0xec, 0x08, 0x41, 0x54, 0xc3])
        XCTAssertEqual(s.offsetFromEntry, 4)
    }

    /// mov rdi, rsi writes an argument register: the probe would read the wrong rdi after it.
    func testAWriteOfAnArgumentRegisterKeepsTheEntry() throws {
        let s = try site([0x48, 0x89, 0xf7, 0x55, 0xc3])
        XCTAssertEqual(s.offsetFromEntry, 0)
        XCTAssertEqual(s.cost, .singleStepped)
        XCTAssertNotNil(s.keptAtEntryBecause)
    }

    /// xor r9d, r9d; push rdx: r9 is no argument of a three-parameter function.
    func testAWriteOfARegisterTheFunctionDoesNotTakeIsSkipped() throws {
        let bytes: [UInt8] = [0x45, 0x31, 0xc9, 0x52, 0xc3]
        XCTAssertEqual(try XCTUnwrap(ProbeSite.choose(code: bytes, entry: 0x1000, wholeFunction: true, arguments: 3, disassembler: d)).offsetFromEntry, 3)
        XCTAssertEqual(try XCTUnwrap(ProbeSite.choose(code: bytes, entry: 0x1000, wholeFunction: true, arguments: 6, disassembler: d)).offsetFromEntry, 0)
    }

    /// mov [rdi+8], rax writes memory the probe may read through rdi.
    func testAMemoryWriteKeepsTheEntry() throws {
        let s = try site([0x48, 0x89, 0x47, 0x08, 0x55, 0xc3])
        XCTAssertEqual(s.offsetFromEntry, 0)
    }

    /// A jump back to the push would hit the probe without a call.
    func testABranchIntoThePrologueKeepsTheEntry() throws {
        // 0x1000 endbr64; 0x1004 push rbp; 0x1005 jmp 0x1004
        let s = try site([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0xeb, 0xfd])
        XCTAssertEqual(s.offsetFromEntry, 0)
        XCTAssertTrue(s.keptAtEntryBecause?.contains("0x1004") == true, s.keptAtEntryBecause ?? "")
        XCTAssertEqual(try site([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0xc3], whole: false).offsetFromEntry, 0, "size unknown: stay")
    }

    func testNopsAndRelativeBranchesAreEmulated() throws {
        XCTAssertEqual(d.decode([0x0f, 0x1f, 0x44, 0x00, 0x00], address: 0)[0].cost, .emulated)
        XCTAssertEqual(d.decode([0xe8, 0, 0, 0, 0], address: 0)[0].cost, .emulated)
        XCTAssertEqual(d.decode([0x74, 0x02], address: 0)[0].cost, .emulated)
        XCTAssertEqual(d.decode([0xff, 0xe0], address: 0)[0].cost, .singleStepped, "jmp rax: not relative")
        XCTAssertEqual(d.decode([0xf3, 0x0f, 0x1e, 0xfa], address: 0)[0].cost, .singleStepped)
        XCTAssertEqual(d.decode([0x6a, 0x01], address: 0)[0].cost, .singleStepped, "push of an immediate")
    }

    /// On the testbed's QEMU 7.2 qemu-io: every function the collector probes gets a site at an
    /// instruction boundary objdump agrees on, and co_tls_current's offset read from
    /// qemu_coroutine_self's code equals the one its TLS symbol gives.
    func testRealBinarySitesAndCoroutineTLS() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = repo.appendingPathComponent(".testbed/bin/qemu-io").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw Prerequisite.unavailable("\(path) is not built (run scripts/testbed.sh)")
        }
        let elf = try ELFFile(path: path)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        func bytes(_ address: UInt64, _ count: Int) -> [UInt8]? {
            guard let off = elf.fileOffset(forAddress: address), Int(off) + count <= file.count else { return nil }
            return Array(file[Int(off) ..< Int(off) + count])
        }
        let self_ = try XCTUnwrap(elf.function(named: "qemu_coroutine_self"))
        let disp = try XCTUnwrap(CoroutineTLSFinder.find(code: try XCTUnwrap(bytes(self_.address, 64)), entry: self_.address,
                                                         callee: { bytes($0, 32) }, disassembler: d))
        XCTAssertEqual(disp, elf.threadPointerOffset(ofThreadLocal: "co_tls_current"))

        let write = try XCTUnwrap(elf.function(named: "qcow2_cache_write"))
        let s = try XCTUnwrap(ProbeSite.choose(code: try XCTUnwrap(bytes(write.address, Int(write.size))), entry: write.address,
                                               wholeFunction: true, disassembler: d))
        let objdump = Process()
        objdump.executableURL = URL(fileURLWithPath: "/usr/bin/objdump")
        objdump.arguments = ["-d", "--no-show-raw-insn", "-M", "intel", "--start-address=0x\(String(write.address, radix: 16))",
                             "--stop-address=0x\(String(write.address + 32, radix: 16))", path]
        let out = Pipe()
        objdump.standardOutput = out
        try objdump.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        objdump.waitUntilExit()
        let line = text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(String(s.address, radix: 16) + ":") }
        XCTAssertNotNil(line, "objdump has an instruction at the chosen site 0x\(String(s.address, radix: 16)):\n\(text)")
        XCTAssertTrue(line.map { $0.contains(s.instruction.split(separator: " ").first ?? "?") } ?? false, "\(line ?? "") vs \(s.instruction)")
    }
}
