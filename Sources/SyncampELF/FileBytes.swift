import Foundation

/// Reads whole files with POSIX calls so that errors carry the `errno` text.
enum FileBytes {
    /// Returns the contents of the file at `path`.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path, "cannot open", errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(path, "cannot stat", errno) }
        let expected = Int(max(info.st_size, 0))
        var readError: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: expected) { buffer, count in
            while count < expected {
                let n = Foundation.read(fd, buffer.baseAddress! + count, expected - count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { readError = errno }
                if n <= 0 { break }
                count += n
            }
        }
        guard readError == 0 else { throw failure(path, "cannot read", readError) }
        return bytes
    }

    private static func failure(_ path: String, _ action: String, _ code: Int32) -> ELFError {
        .cannotRead(path: path, reason: "\(action): \(String(cString: strerror(code)))")
    }
}
