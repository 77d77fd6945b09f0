import Foundation

/// Finds the separate debug file of a stripped binary, where GDB and perf look for it.
///
/// In order: `DIR/.build-id/xx/yyyy.debug` for each debug directory (the
/// build-id's first byte, then the rest), then the `.gnu_debuglink` name beside
/// the binary, in its `.debug/` folder, and under each debug directory
/// followed by the binary's folder. A candidate counts only if it has a symbol
/// table and, when both files have a build-id, the same one: a debug file of
/// another build would put the probes at wrong offsets.
///
/// ```swift
/// if let found = DebugFileLocator.find(for: elf, binaryPath: "/usr/bin/qemu-system-x86_64") {
///     print(found.file.path, found.how)   // "/usr/lib/debug/.build-id/3f/12ab....debug", "build-id"
/// }
/// ```
public enum DebugFileLocator {
    /// The default debug directory (GDB's `debug-file-directory`).
    public static let defaultDirectories = ["/usr/lib/debug"]

    /// A debug file found for a binary, and how it was found ("build-id" or "gnu_debuglink").
    public struct Found: Sendable {
        public var file: ELFFile
        public var how: String
    }

    /// Every path looked at, in order, with how it would be found.
    public static func candidates(for binary: ELFFile, binaryPath: String,
                                  directories: [String] = defaultDirectories) -> [(path: String, how: String)] {
        var out: [(String, String)] = []
        if let id = binary.buildID, id.count > 2 {
            for dir in directories {
                out.append(("\(dir)/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug", "build-id"))
            }
        }
        if let link = binary.debugLink, !link.contains("/") {
            let folder = (binaryPath as NSString).deletingLastPathComponent
            out.append(("\(folder)/\(link)", "gnu_debuglink"))
            out.append(("\(folder)/.debug/\(link)", "gnu_debuglink"))
            for dir in directories { out.append(("\(dir)\(folder)/\(link)", "gnu_debuglink")) }
        }
        return out
    }

    /// The first candidate that is a debug file of this very build, or nil.
    public static func find(for binary: ELFFile, binaryPath: String,
                            directories: [String] = defaultDirectories) -> Found? {
        for c in candidates(for: binary, binaryPath: binaryPath, directories: directories) {
            guard FileManager.default.fileExists(atPath: c.path), let file = try? ELFFile(path: c.path),
                  file.hasSymtab, matches(file, binary) else { continue }
            return Found(file: file, how: c.how)
        }
        return nil
    }

    /// Whether `symbols` can describe `binary`: the same build-id, or no build-id on one side to compare.
    public static func matches(_ symbols: ELFFile, _ binary: ELFFile) -> Bool {
        guard let a = symbols.buildID, let b = binary.buildID else { return true }
        return a == b
    }
}
