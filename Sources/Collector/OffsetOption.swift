import SyncampProbes
import Foundation
import SyncampELF

/// Parses `--offset NAME=[BINARY:]0xOFFSET`: probes pinned to file offsets of the target's binary.
enum OffsetOption {
    /// The function names an offset can be given for: the catalog's and the coroutine switch.
    static var knownNames: Set<String> {
        Set(ProbeCatalog.entries.flatMap(\.symbols) + ["qemu_coroutine_switch"])
    }

    static func parse(_ specs: [String], binary: ELFFile, binaryPath: String) throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for spec in specs {
            guard let eq = spec.firstIndex(of: "=") else {
                throw CollectorError.usage("--offset takes NAME=0xOFFSET (for example qcow2_cache_entry_flush=0x1a2b30), not \(spec)")
            }
            let name = String(spec[..<eq])
            var value = String(spec[spec.index(after: eq)...])
            guard knownNames.contains(name) else {
                throw CollectorError.usage("--offset: \(name) is not a function syncamp probes; it probes \(knownNames.sorted().joined(separator: ", "))")
            }
            if let colon = value.lastIndex(of: ":") {
                let path = String(value[..<colon])
                value = String(value[value.index(after: colon)...])
                let given = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                let target = URL(fileURLWithPath: binaryPath).resolvingSymlinksInPath().path
                let sameBuild = (try? ELFFile(path: path)).map { DebugFileLocator.matches($0, binary) && $0.buildID != nil } ?? false
                guard given == target || sameBuild else {
                    throw CollectorError.usage("--offset \(spec): \(path) is not the traced binary \(binaryPath) (nor the same build)")
                }
            }
            let number = value.lowercased().hasPrefix("0x") ? UInt64(value.dropFirst(2), radix: 16) : UInt64(value)
            guard let offset = number, binary.address(forFileOffset: offset) != nil else {
                throw CollectorError.usage("--offset \(spec): \(value) is not a file offset inside a loaded segment of \(binaryPath)")
            }
            out[name] = offset
        }
        return out
    }
}
