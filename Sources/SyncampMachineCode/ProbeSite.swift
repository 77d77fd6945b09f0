/// Where a function's entry uprobe goes: its first instruction, or the first one of its
/// straight-line prologue that the kernel emulates, when everything the probe reads is
/// still as it was at the entry there.
///
/// A uprobe on an instruction the kernel single-steps (endbr64, sub, mov) costs a second
/// trap; distribution builds start every function with endbr64 (-fcf-protection) and many
/// with `sub $N,%rsp`. A few bytes in there is often a push or a nop, which the kernel
/// emulates. The probe reads only the argument registers, memory reached through them, the
/// thread pointer (fs) and the attach cookie, so the site may move past instructions that
/// write none of these: it must not move past a branch, a write of an argument register,
/// or a write to memory other than a push (which only writes below the caller's frame), and
/// no branch of the function may land in the bytes skipped or on the site (a jump there
/// would hit the probe without a call).
public struct ProbeSite: Sendable, Equatable {
    /// The function's entry.
    public var entryAddress: UInt64
    /// Where the probe goes, and its distance from the entry (0: the entry itself).
    public var address: UInt64
    public var offsetFromEntry: UInt64 { address - entryAddress }
    /// The instruction there, as capstone prints it.
    public var instruction: String
    public var cost: UprobeCost
    /// The entry's own instruction and its cost (what the probe would pay there).
    public var entryInstruction: String
    public var entryCost: UprobeCost
    /// Why it stays at the entry although that is single-stepped, if it does.
    public var keptAtEntryBecause: String?

    /// Prologue instructions looked at past the entry.
    public static let prologueLimit = 8

    /// Chooses the site in `code`, the function's bytes from its entry (its whole body when
    /// `wholeFunction`, so that jumps into the prologue can be seen; otherwise the site stays
    /// at a single-stepped entry, since such jumps could not be ruled out). The probe reads the
    /// first `arguments` argument registers (the function's parameters; 6 when unknown).
    public static func choose(code: [UInt8], entry: UInt64, wholeFunction: Bool, arguments: Int = 6,
                              disassembler: Disassembler) -> ProbeSite? {
        let body = disassembler.decode(code, address: entry)
        guard let first = body.first else { return nil }
        var site = ProbeSite(entryAddress: entry, address: entry, instruction: first.text, cost: first.cost,
                             entryInstruction: first.text, entryCost: first.cost)
        guard first.cost == .singleStepped else { return site }
        guard wholeFunction else {
            site.keptAtEntryBecause = "the function's size is unknown, so jumps into its prologue cannot be ruled out"
            return site
        }
        var skipped: [Instruction] = []
        for insn in body.prefix(prologueLimit + 1) {
            if insn.cost == .emulated, !skipped.isEmpty {
                let landing = body.compactMap(\.branchTarget).filter { $0 > entry && $0 <= insn.address }
                guard landing.isEmpty else {
                    site.keptAtEntryBecause = "a branch of the function lands at 0x\(String(landing[0], radix: 16)), inside the prologue"
                    return site
                }
                return ProbeSite(entryAddress: entry, address: insn.address, instruction: insn.text, cost: .emulated,
                                 entryInstruction: first.text, entryCost: first.cost)
            }
            if insn.isBranch || insn.writesMemory || insn.writtenArgumentRegisters.contains(where: { $0 < arguments }) {
                site.keptAtEntryBecause = "\(insn.text) comes first, before any instruction the kernel emulates"
                return site
            }
            skipped.append(insn)
        }
        site.keptAtEntryBecause = "no emulated instruction in the first \(prologueLimit) of the prologue"
        return site
    }
}

/// The offset from the thread pointer of QEMU's coroutine-local `co_tls_current`, read from
/// the machine code of `qemu_coroutine_self`, which stripped binaries export.
///
/// QEMU's `qemu_coroutine_self()` (util/qemu-coroutine.c) returns `get_current()`, the
/// coroutine TLS accessor (include/qemu/coroutine-tls.h), which gcc compiles to
/// `mov %fs:DISP,%rax` either inline or in a two-instruction helper it calls
/// (`mov %fs:-8,%rax; ret` in Debian's 7.2 and 10.0 builds).
public enum CoroutineTLSFinder {
    /// `DISP` of the first 64-bit fs-relative load in `code` (qemu_coroutine_self from its
    /// entry), or in the function its first relative call goes to (`callee` gives that
    /// function's bytes by address); nil if neither has one.
    public static func find(code: [UInt8], entry: UInt64, callee: (UInt64) -> [UInt8]?, disassembler: Disassembler) -> Int64? {
        let body = disassembler.decode(code, address: entry, limit: 16)
        for insn in body {
            if let disp = insn.fsLoadDisplacement, disp < 0 { return disp }
            if insn.text.hasPrefix("ret") { break }
            if insn.text.hasPrefix("call"), let target = insn.branchTarget, let bytes = callee(target) {
                let helper = disassembler.decode(bytes, address: target, limit: 4)
                for h in helper {
                    if let disp = h.fsLoadDisplacement, disp < 0 { return disp }
                    if h.isBranch { break }
                }
                return nil
            }
        }
        return nil
    }
}
