import Foundation

/// What binutils (`nm`, `readelf`, `objdump`) say about a binary: the independent
/// answers the reader's results are checked against.
struct BinutilsOracle {
    let path: String

    /// The address `nm` (or `nm -D`) gives for `symbol` with one of `types`.
    func address(of symbol: String, dynamic: Bool = false, types: Set<Character> = ["T", "t", "W", "i"]) throws -> UInt64? {
        let output = try ToolRunner.run("nm", (dynamic ? ["-D"] : []) + [path])
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[2] == symbol, let type = fields[1].first, types.contains(type) else { continue }
            return UInt64(fields[0], radix: 16)
        }
        return nil
    }

    /// The file offset of `address` computed from the `LOAD` lines of `readelf -lW`.
    func fileOffset(of address: UInt64) throws -> UInt64? {
        let output = try ToolRunner.run("readelf", ["-lW", path])
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 5, f[0] == "LOAD", let offset = hex(f[1]), let vaddr = hex(f[2]), let filesz = hex(f[4])
            else { continue }
            if address >= vaddr, address - vaddr < filesz { return address - vaddr + offset }
        }
        return nil
    }

    /// Where the executable's thread-local `symbol` sits relative to the thread pointer, from `readelf`:
    /// its value (an offset into the TLS segment, `readelf -sW`) minus the TLS segment's size rounded
    /// up to its alignment (`readelf -lW`), as x86-64's variant II lays the block out below %fs:0.
    func threadPointerOffset(ofThreadLocal symbol: String) throws -> Int64? {
        let segments = try ToolRunner.run("readelf", ["-lW", path]).split(separator: "\n").map { $0.split(separator: " ") }
        guard let tls = segments.first(where: { $0.first == "TLS" }), tls.count >= 8,
              let memsz = hex(tls[5]), let align = hex(tls[7]), align > 0 else { return nil }
        let symbols = try ToolRunner.run("readelf", ["-sW", path]).split(separator: "\n").map { $0.split(separator: " ") }
        guard let entry = symbols.first(where: { $0.count >= 8 && $0[3] == "TLS" && $0[7] == symbol }),
              let value = UInt64(entry[1], radix: 16) else { return nil }
        let block = (memsz + align - 1) / align * align
        return Int64(value) - Int64(block)
    }

    /// The build-id `readelf -n` prints.
    func buildID() throws -> String? {
        let output = try ToolRunner.run("readelf", ["-n", path])
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Build ID:") }) else { return nil }
        return line.split(separator: " ").last.map(String.init)
    }

    /// The bytes of the instruction at `address` as `objdump -d` shows them.
    func firstInstructionBytes(at address: UInt64) throws -> [UInt8] {
        let start = "0x" + String(address, radix: 16), stop = "0x" + String(address + 1, radix: 16)
        let output = try ToolRunner.run("objdump", ["-d", "--start-address=\(start)", "--stop-address=\(stop)", path])
        let prefix = String(address, radix: 16) + ":"
        guard let line = output.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }),
              case let columns = line.split(separator: "\t"), columns.count >= 2 else { return [] }
        return columns[1].split(separator: " ").compactMap { UInt8($0, radix: 16) }
    }

    private func hex(_ text: Substring) -> UInt64? {
        UInt64(text.hasPrefix("0x") ? text.dropFirst(2) : text, radix: 16)
    }
}
