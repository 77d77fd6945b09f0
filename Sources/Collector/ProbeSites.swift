import Foundation
import SyncampELF
import SyncampMachineCode
import SyncampProbePlan
import SyncampProbes

/// Moves each function probe to its cheapest site (ProbeSite) and finds `co_tls_current`
/// in stripped binaries' machine code (CoroutineTLSFinder), reading the attached binary.
struct ProbeSites {
    private let file: FileHandle
    private let binary: ELFFile
    private let disassembler: Disassembler

    init(path: String, binary: ELFFile) throws {
        guard let f = FileHandle(forReadingAtPath: path) else { throw CollectorError.cannotReadBinary("cannot open \(path) to decode its probe sites") }
        file = f
        self.binary = binary
        disassembler = try Disassembler()
    }

    /// `count` bytes of the binary at the virtual address, through its segments.
    func bytes(at address: UInt64, count: Int) -> [UInt8]? {
        guard count > 0, let off = binary.fileOffset(forAddress: address) else { return nil }
        do {
            try file.seek(toOffset: off)
            guard let data = try file.read(upToCount: count), data.count == count else { return nil }
            return Array(data)
        } catch { return nil }
    }

    /// The site of a function probe planned at its entry. A symbol of unknown size (a given
    /// offset) is decoded over its first bytes only, and then stays at its entry unless that is emulated.
    /// `arguments`: how many argument registers the function has (its parameters), which the probe reads.
    func site(for p: PlannedProbe, arguments: Int) -> ProbeSite? {
        guard p.usdtEvent == nil, let entry = binary.address(forFileOffset: p.fileOffset) else { return nil }
        let whole = p.symbol.size > 0 && p.symbol.size < 1 << 20
        guard let code = bytes(at: entry, count: whole ? Int(p.symbol.size) : 32) else { return nil }
        return ProbeSite.choose(code: code, entry: entry, wholeFunction: whole, arguments: arguments, disassembler: disassembler)
    }

    /// Where a function probe goes (ProbePlan.placeSites): its cheapest site, or its entry when
    /// `atEntry` or the site is the entry, with the instruction there and its cost; nil: not decoded.
    func placement(of p: PlannedProbe, abi: QemuABI, atEntry: Bool) -> (offsetFromEntry: UInt64, instruction: String, cost: String)? {
        let arguments = abi.parameters[p.symbol.name]?.count ?? 6
        guard let site = site(for: p, arguments: arguments) else { return nil }
        if atEntry || site.offsetFromEntry == 0 { return (0, site.entryInstruction, site.entryCost.rawValue) }
        return (site.offsetFromEntry, site.instruction, site.cost.rawValue)
    }

    /// co_tls_current's offset from the thread pointer, read from `qemu_coroutine_self`'s code.
    func coroutineTLS(selfFunction sym: ELFSymbol) -> Int64? {
        guard let code = bytes(at: sym.address, count: max(16, min(Int(sym.size), 128))) else { return nil }
        return CoroutineTLSFinder.find(code: code, entry: sym.address, callee: { bytes(at: $0, count: 32) }, disassembler: disassembler)
    }
}
