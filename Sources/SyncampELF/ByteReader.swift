import Foundation

/// Bounds-checked little-endian reads over the bytes of one file.
///
/// Every read checks its range against the buffer with overflow-safe arithmetic
/// and throws `ELFError.corrupt` naming the structure instead of trapping.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String

    /// The length of the buffer.
    var count: UInt64 { UInt64(bytes.count) }

    /// Makes the `corrupt` error for `structure` at `offset`.
    func corrupt(_ structure: String, at offset: UInt64, _ reason: String = "runs past the end of the file") -> ELFError {
        .corrupt(path: path, structure: structure, offset: offset, reason: reason)
    }

    /// Throws unless `size` bytes starting at `offset` lie inside the buffer.
    func check(_ offset: UInt64, _ size: UInt64, _ structure: String) throws {
        guard offset <= count, size <= count - offset else { throw corrupt(structure, at: offset) }
    }

    // Concrete (non-generic) reads: debug builds do not specialize generics,
    // and symbol tables make these the hot path.
    func u16(_ offset: UInt64, _ structure: String) throws -> UInt16 {
        try check(offset, 2, structure)
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: Int(offset), as: UInt16.self))
    }

    func u32(_ offset: UInt64, _ structure: String) throws -> UInt32 {
        try check(offset, 4, structure)
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: Int(offset), as: UInt32.self))
    }

    func u64(_ offset: UInt64, _ structure: String) throws -> UInt64 {
        try check(offset, 8, structure)
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: Int(offset), as: UInt64.self))
    }

    /// Returns `size` bytes at `offset`.
    func slice(_ offset: UInt64, _ size: UInt64, _ structure: String) throws -> UnsafeRawBufferPointer {
        try check(offset, size, structure)
        return UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + size)])
    }

    /// Reads a NUL-terminated string starting `index` bytes into the table at
    /// `tableOffset` of `tableSize` bytes; the NUL must lie inside the table.
    func cString(table tableOffset: UInt64, size tableSize: UInt64, index: UInt64, _ structure: String) throws -> String {
        let table = try slice(tableOffset, tableSize, structure)
        guard index < tableSize else {
            throw corrupt(structure, at: tableOffset, "has no string at index \(index)")
        }
        let start = Int(index)
        let rest = UnsafeRawBufferPointer(rebasing: table[start...])
        guard let base = rest.baseAddress, let nul = memchr(base, 0, rest.count) else {
            throw corrupt(structure, at: tableOffset + index, "holds a string that runs off its end")
        }
        let length = base.distance(to: UnsafeRawPointer(nul))
        return String(decoding: UnsafeRawBufferPointer(rebasing: rest[..<length]), as: UTF8.self)
    }
}

/// Returns `a + b * c`, or nil if any step overflows.
func checkedOffset(_ a: UInt64, plus b: UInt64, times c: UInt64) -> UInt64? {
    let (product, o1) = b.multipliedReportingOverflow(by: c)
    let (sum, o2) = a.addingReportingOverflow(product)
    return o1 || o2 ? nil : sum
}
