import CCapstone

/// One decoded x86-64 instruction: what a probe site choice needs to know of it.
public struct Instruction: Sendable, Equatable {
    /// Its virtual address.
    public var address: UInt64
    public var size: Int
    /// As capstone prints it: "push rbp", "endbr64", "sub rsp, 8".
    public var text: String
    /// How the kernel handles a uprobe on it (arch/x86/kernel/uprobes.c).
    public var cost: UprobeCost
    /// A jump, call or return: control may leave the straight line here.
    public var isBranch: Bool
    /// The target of a relative jump or call.
    public var branchTarget: UInt64?
    /// The integer argument registers it writes, by position (0 rdi, 1 rsi, 2 rdx, 3 rcx, 4 r8,
    /// 5 r9; a part of one counts), which a probe reads.
    public var writtenArgumentRegisters: Set<Int>
    /// Whether it writes memory other than by push.
    public var writesMemory: Bool
    /// For a 64-bit load from `fs:[disp]` with no base or index: `disp`, a thread-local's offset
    /// from the thread pointer (x86-64 TLS variant II).
    public var fsLoadDisplacement: Int64?
}

/// What a uprobe hit costs on x86-64, by the instruction at its address.
///
/// The kernel emulates a few instructions (`branch_setup_xol_ops`, `push_setup_xol_ops`, and
/// nops since Linux 6.12) and single-steps every other one out of line, a second trap:
/// measured on this project's VMs, 1 us against 10 to 27 us (BENCHMARKS.md, bench/uprobe-cost.sh).
public enum UprobeCost: String, Sendable, Codable, CaseIterable {
    /// push of a register, a nop, a relative jmp, jcc or call: emulated in the trap.
    case emulated
    /// Everything else (endbr64, mov, sub, ...): executed out of line with a second trap.
    case singleStepped = "single-stepped"
}

/// capstone in x86-64 mode with instruction details.
public final class Disassembler {
    private var handle: csh = 0

    public init() throws {
        guard cs_open(CS_ARCH_X86, CS_MODE_64, &handle) == CS_ERR_OK else {
            throw DisassemblyError(reason: "capstone cannot open x86-64 (cs_open)")
        }
        cs_option(handle, CS_OPT_DETAIL, size_t(CS_OPT_ON.rawValue))
    }

    deinit { cs_close(&handle) }

    public struct DisassemblyError: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Decodes `bytes`, placed at `address`, up to the first byte capstone cannot decode or `limit` instructions.
    public func decode(_ bytes: [UInt8], address: UInt64, limit: Int = 0) -> [Instruction] {
        var insns: UnsafeMutablePointer<cs_insn>?
        let n = bytes.withUnsafeBufferPointer { cs_disasm(handle, $0.baseAddress, $0.count, address, limit, &insns) }
        guard n > 0, let insns else { return [] }
        defer { cs_free(insns, n) }
        return (0 ..< n).map { describe(&insns[$0]) }
    }

    /// capstone register id -> argument position.
    private static let argumentRegisters: [UInt32: Int] = {
        let regs: [[x86_reg]] = [[X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL],
                                 [X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL],
                                 [X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH],
                                 [X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH],
                                 [X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B],
                                 [X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B]]
        var map: [UInt32: Int] = [:]
        for (i, names) in regs.enumerated() { for r in names { map[r.rawValue] = i } }
        return map
    }()

    private func describe(_ insn: inout cs_insn) -> Instruction {
        let mnemonic = withUnsafeBytes(of: insn.mnemonic) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let ops = withUnsafeBytes(of: insn.op_str) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let x86 = insn.detail.pointee.x86
        let operands = withUnsafeBytes(of: x86.operands) { raw in
            Array(raw.bindMemory(to: cs_x86_op.self).prefix(Int(x86.op_count)))
        }
        var read = [UInt16](repeating: 0, count: 64), written = [UInt16](repeating: 0, count: 64)
        var nRead: UInt8 = 0, nWritten: UInt8 = 0
        _ = withUnsafeMutablePointer(to: &insn) { cs_regs_access(handle, $0, &read, &nRead, &written, &nWritten) }
        let writes = written.prefix(Int(nWritten))

        let groups = withUnsafeBytes(of: insn.detail.pointee.groups) { Array($0.prefix(Int(insn.detail.pointee.groups_count))) }
        let isJump = groups.contains(UInt8(CS_GRP_JUMP.rawValue)), isCall = groups.contains(UInt8(CS_GRP_CALL.rawValue))
        let isRet = groups.contains(UInt8(CS_GRP_RET.rawValue)) || groups.contains(UInt8(CS_GRP_IRET.rawValue))
        let relative = groups.contains(UInt8(CS_GRP_BRANCH_RELATIVE.rawValue))
        let target = (isJump || isCall) && relative ? operands.first.flatMap { $0.type == X86_OP_IMM ? UInt64(bitPattern: $0.imm) : nil } : nil

        let id = x86_insn(insn.id)
        let cost: UprobeCost
        if id == X86_INS_NOP || ((isJump || isCall) && target != nil)
            || (id == X86_INS_PUSH && operands.count == 1 && operands[0].type == X86_OP_REG) {
            cost = .emulated
        } else {
            cost = .singleStepped
        }
        var fsLoad: Int64? = nil
        if id == X86_INS_MOV, operands.count == 2, operands[0].type == X86_OP_REG, operands[1].type == X86_OP_MEM,
           operands[1].size == 8, operands[1].mem.segment == X86_REG_FS,
           operands[1].mem.base == X86_REG_INVALID, operands[1].mem.index == X86_REG_INVALID {
            fsLoad = operands[1].mem.disp
        }
        let memoryWrite = id != X86_INS_PUSH && operands.contains { $0.type == X86_OP_MEM && $0.access & UInt8(CS_AC_WRITE.rawValue) != 0 }
        return Instruction(address: insn.address, size: Int(insn.size), text: ops.isEmpty ? mnemonic : "\(mnemonic) \(ops)",
                           cost: cost, isBranch: isJump || isCall || isRet, branchTarget: target,
                           writtenArgumentRegisters: Set(writes.compactMap { Self.argumentRegisters[UInt32($0)] }),
                           writesMemory: memoryWrite, fsLoadDisplacement: fsLoad)
    }
}
