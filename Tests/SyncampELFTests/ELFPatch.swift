/// Reads and overwrites little-endian fields of an ELF64 image, to build malformed inputs.
struct ELFPatch {
    var bytes: [UInt8]

    func read(_ offset: Int, width: Int) -> UInt64 {
        (0..<width).reversed().reduce(0) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }

    mutating func write(_ offset: Int, width: Int, _ value: UInt64) {
        for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    var sectionHeaderOffset: Int { Int(read(40, width: 8)) }
    var sectionCount: Int { Int(read(60, width: 2)) }

    /// The file offset of the header of the section called `name`.
    func sectionHeader(named name: String) -> Int? {
        let names = sectionHeaderOffset + Int(read(62, width: 2)) * 64
        let table = Int(read(names + 24, width: 8))
        for i in 0..<sectionCount {
            let header = sectionHeaderOffset + i * 64
            let start = table + Int(read(header, width: 4))
            let end = bytes[start...].firstIndex(of: 0) ?? start
            if String(decoding: bytes[start..<end], as: UTF8.self) == name { return header }
        }
        return nil
    }
}

/// A small deterministic xorshift64 generator for the fuzz loops.
struct XorShift: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
