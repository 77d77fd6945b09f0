/// Why a capture could not be written or read, in one sentence a user can act on.
public enum CaptureError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case alreadyExists(path: String)
    case notACapture(path: String)
    case unsupportedVersion(path: String, found: UInt32)
    case emptyOrTruncatedHeader(path: String, bytes: Int)
    case badManifest(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open capture \(path): \(reason)"
        case let .alreadyExists(path):
            return "capture \(path) already exists; choose another -o path or pass --force to overwrite it"
        case let .notACapture(path):
            return "\(path) is not a syncamp capture (wrong magic); pass a file written by `collector -o`"
        case let .unsupportedVersion(path, found):
            return "\(path) is a syncamp capture of format version \(found), but this analyzer reads version \(CaptureFormat.version); use a syncamp release that reads version \(found)"
        case let .emptyOrTruncatedHeader(path, bytes):
            return "\(path) holds only \(bytes) bytes, less than a capture header; the collector probably died before writing anything"
        case let .badManifest(path, reason):
            return "the manifest of capture \(path) cannot be read (\(reason)); the file is damaged"
        case let .writeFailed(path, reason):
            return "writing capture \(path) failed: \(reason); what was written before stays readable"
        }
    }
}
