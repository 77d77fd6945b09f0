import CElfutils
import Foundation

/// Fetches a binary's debug file by build-id from the debuginfod servers named in
/// `DEBUGINFOD_URLS`, through elfutils' libdebuginfod (with its cache, by default
/// `~/.cache/debuginfod_client`, or `DEBUGINFOD_CACHE_PATH`).
///
/// libdebuginfod is loaded at run time with dlopen, as elfutils' own libdwfl does, so
/// the collector runs where it is not installed (it then says so and goes on).
public enum Debuginfod {
    /// What a fetch gave.
    public enum Outcome: Sendable, Equatable {
        /// The debug file, in debuginfod's cache.
        case found(path: String)
        /// `DEBUGINFOD_URLS` is empty or unset: no server to ask.
        case noServers
        /// libdebuginfod.so.1 could not be loaded.
        case unavailable(String)
        /// The servers do not have it, or could not be reached (the error text).
        case notFound(String)
    }

    private typealias Begin = @convention(c) () -> OpaquePointer?
    private typealias End = @convention(c) (OpaquePointer?) -> Void
    private typealias FindDebuginfo = @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, Int32,
                                                      UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32

    /// Asks the servers in `DEBUGINFOD_URLS` for the debug file of `buildID` (hex).
    public static func fetchDebugInfo(buildID: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Outcome {
        guard let urls = environment["DEBUGINFOD_URLS"], !urls.trimmingCharacters(in: .whitespaces).isEmpty else { return .noServers }
        guard let lib = dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_LOCAL) else {
            return .unavailable(dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        defer { dlclose(lib) }
        guard let b = dlsym(lib, "debuginfod_begin"), let e = dlsym(lib, "debuginfod_end"),
              let f = dlsym(lib, "debuginfod_find_debuginfo") else {
            return .unavailable("libdebuginfod.so.1 lacks debuginfod_begin/find_debuginfo")
        }
        let begin = unsafeBitCast(b, to: Begin.self), end = unsafeBitCast(e, to: End.self)
        let find = unsafeBitCast(f, to: FindDebuginfo.self)
        guard let client = begin() else { return .unavailable("debuginfod_begin failed") }
        defer { end(client) }
        var path: UnsafeMutablePointer<CChar>?
        // A build-id length of 0 means the build-id is given as a hex string.
        let fd = Array(buildID.utf8CString).withUnsafeBufferPointer { id in
            id.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: id.count) { find(client, $0, 0, &path) }
        }
        guard fd >= 0, let p = path else {
            return .notFound("\(String(cString: strerror(-fd))) from \(urls)")
        }
        close(fd)
        defer { free(p) }
        return .found(path: String(cString: p))
    }
}
