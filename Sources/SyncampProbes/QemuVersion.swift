/// A QEMU release, as the binary itself says it is (`ELFFile.versionString`: the
/// `--version` text in its read-only data, stripped binaries included).
public struct QemuVersion: Comparable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var micro: Int
    /// The full version text: "7.2.0" or "10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)".
    public var full: String

    public init(major: Int, minor: Int, micro: Int, full: String? = nil) {
        self.major = major
        self.minor = minor
        self.micro = micro
        self.full = full ?? "\(major).\(minor).\(micro)"
    }

    /// Parses "7.2.0" or "10.0.2 (Debian ...)".
    public init?(_ text: String) {
        let number = text.prefix { $0.isNumber || $0 == "." }
        let parts = number.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return nil }
        self.init(major: parts[0], minor: parts[1], micro: parts.count > 2 ? parts[2] : 0,
                  full: text.trimmingCharacters(in: .whitespaces))
    }

    public var description: String { full }

    public static func < (a: QemuVersion, b: QemuVersion) -> Bool {
        (a.major, a.minor, a.micro) < (b.major, b.minor, b.micro)
    }

    public static func == (a: QemuVersion, b: QemuVersion) -> Bool {
        (a.major, a.minor, a.micro) == (b.major, b.minor, b.micro)
    }

    public func hash(into h: inout Hasher) { h.combine(major); h.combine(minor); h.combine(micro) }
}

import Foundation
