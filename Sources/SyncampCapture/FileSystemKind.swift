/// The file system that holds an image, as `/proc/PID/mountinfo` names its type ("ext4", "xfs",
/// "btrfs", "tmpfs", ...), or `block_device` when the image is a block device itself.
///
/// The storage levels below a host sync depend on it: ext4 syncs and commits its journal
/// (jbd2), XFS forces its log, btrfs syncs its log tree or commits a transaction; a block
/// device has no file system and goes straight to the device's flush.
public struct FileSystemKind: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let ext4 = FileSystemKind(rawValue: "ext4")
    public static let xfs = FileSystemKind(rawValue: "xfs")
    public static let btrfs = FileSystemKind(rawValue: "btrfs")
    /// No file system: QEMU opens the block device as its image (file-posix `host_device`).
    public static let blockDevice = FileSystemKind(rawValue: "block_device")

    /// The file system of a storage-stack event's `probeID` (`enum syncamp_fs`: 0 ext4, 1 xfs, 2 btrfs).
    public init?(eventFS: UInt16) {
        switch eventFS {
        case 0: self = .ext4
        case 1: self = .xfs
        case 2: self = .btrfs
        default: return nil
        }
    }

    public var description: String { rawValue }
}
