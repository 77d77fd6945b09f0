#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// The system calls syncamp makes that swift-system does not wrap, each wrapped once here.
///
/// Everything else (open, read, pread, write, fstat, close, pipe) is swift-system's own
/// `FileDescriptor` API, which throws a typed `Errno` and retries `EINTR` itself. The calls
/// below follow the same rules: they throw `Errno`, and `EINTR` is retried in one place,
/// ``retryingInterrupts(_:)``.
///
/// ```swift
/// let fd = try FileDescriptor.open("run.syncamp", .writeOnly, options: [.create, .exclusiveCreate])
/// try fd.writeAll(bytes)
/// try fd.sync()
/// ```
public enum SystemCall {
    /// Runs a C call that returns -1 and sets `errno` on failure, again while it fails with `EINTR`.
    ///
    /// The one place in syncamp that retries interrupted calls; `close` must never come here
    /// (on Linux the descriptor is gone even when close reports `EINTR`).
    @discardableResult
    public static func retryingInterrupts<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let r = call()
            if r != -1 { return r }
            let e = Errno(rawValue: errno)
            if e != .interrupted { throw e }
        }
    }

    /// Sends `signal` to `pid` (0 only checks that the process exists and may be signalled).
    ///
    /// The corresponding C function is `kill`.
    public static func kill(_ pid: pid_t, _ signal: Int32) throws(Errno) {
        #if canImport(Glibc)
        try retryingInterrupts { Glibc.kill(pid, signal) }
        #else
        try retryingInterrupts { Darwin.kill(pid, signal) }
        #endif
    }

    /// Reaps `pid` if it has exited: true then, false while it runs.
    ///
    /// The corresponding C function is `waitpid` with `WNOHANG`.
    public static func reapIfExited(_ pid: pid_t) throws(Errno) -> Bool {
        var status: Int32 = 0
        return try retryingInterrupts { waitpid(pid, &status, WNOHANG) } == pid
    }

    /// Whether `path` names a file this process may execute.
    ///
    /// The corresponding C function is `access` with `X_OK`.
    public static func isExecutable(_ path: String) -> Bool {
        access(path, X_OK) == 0
    }
}

extension FileDescriptor {
    /// Waits until the file's data and metadata are on the device; reports a write-back
    /// error (EIO, ENOSPC, EDQUOT) that an earlier `write` could not.
    ///
    /// The corresponding C function is `fsync`.
    public func sync() throws(Errno) {
        try SystemCall.retryingInterrupts { fsync(rawValue) }
    }

    /// Sets the file's permission bits.
    ///
    /// The corresponding C function is `fchmod`.
    public func setPermissions(_ permissions: FilePermissions) throws(Errno) {
        try SystemCall.retryingInterrupts { fchmod(rawValue, permissions.rawValue) }
    }

    /// Tells the kernel the file will be read from start to end, so it reads ahead further.
    /// Only advice: a kernel or file system that ignores it is no error.
    ///
    /// The corresponding C function is `posix_fadvise` with `POSIX_FADV_SEQUENTIAL`.
    public func adviseSequentialRead() {
        _ = posix_fadvise(rawValue, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
    }

    /// Closes the descriptor, treating `EINTR` as closed: on Linux the descriptor is released
    /// before close can be interrupted, so retrying would close another file.
    ///
    /// The corresponding C function is `close`.
    public func closeReportingErrors() throws(Errno) {
        do {
            try close()
        } catch Errno.interrupted {
            return
        } catch {
            // swift-system's close throws nothing but Errno.
            throw (error as? Errno) ?? .ioError
        }
    }
}
