/// The fields of the ELF64 file header that locate the other tables.
struct ELFHeader {
    static let size: UInt64 = 64
    static let supportedMachines: Set<UInt16> = [62, 183]  // EM_X86_64, EM_AARCH64
    static let otherMachines: [UInt16: String] = [3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64",
                                                  22: "s390", 40: "ARM", 243: "RISC-V"]

    var phoff: UInt64
    var phentsize: UInt64
    var phnum: UInt64
    var shoff: UInt64
    var shentsize: UInt64
    var shnum: UInt64
    var shstrndx: UInt64

    /// Validates the identification bytes and reads the header.
    init(_ r: ByteReader) throws {
        guard r.count >= 4, r.bytes[0] == 0x7f, r.bytes[1] == 0x45, r.bytes[2] == 0x4c, r.bytes[3] == 0x46 else {
            throw ELFError.notELF(path: r.path, reason: Self.describeMagic(r.bytes))
        }
        guard r.count >= 16 else { throw r.corrupt("ELF identification", at: 0) }
        switch r.bytes[4] {
        case 2: break
        case 1: throw ELFError.unsupported(path: r.path, found: "class ELFCLASS32 (32-bit)")
        case let c: throw ELFError.unsupported(path: r.path, found: "unknown class \(c)")
        }
        switch r.bytes[5] {
        case 1: break
        case 2: throw ELFError.unsupported(path: r.path, found: "data encoding ELFDATA2MSB (big-endian)")
        case let d: throw ELFError.unsupported(path: r.path, found: "unknown data encoding \(d)")
        }
        guard r.count >= Self.size else { throw r.corrupt("ELF header", at: 0) }
        let machine = try r.u16(18, "ELF header")
        guard Self.supportedMachines.contains(machine) else {
            let name = Self.otherMachines[machine].map { " (\($0))" } ?? ""
            throw ELFError.unsupported(path: r.path, found: "machine \(machine)\(name)")
        }
        phoff = try r.u64(32, "ELF header")
        shoff = try r.u64(40, "ELF header")
        phentsize = UInt64(try r.u16(54, "ELF header"))
        phnum = UInt64(try r.u16(56, "ELF header"))
        shentsize = UInt64(try r.u16(58, "ELF header"))
        shnum = UInt64(try r.u16(60, "ELF header"))
        shstrndx = UInt64(try r.u16(62, "ELF header"))
    }

    /// Says what the first bytes of a non-ELF file are.
    private static func describeMagic(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.isEmpty { return "it is empty" }
        let hex = bytes.prefix(4).map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
        return "its first bytes are \(hex), not the magic 7f 45 4c 46"
    }
}

extension String {
    /// Pads with leading zeros to `width` characters.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
