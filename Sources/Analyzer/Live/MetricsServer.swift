import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP server for Prometheus scrapes: `GET /metrics` answers the latest exposition.
///
/// One background thread accepts connections and answers each in turn; a
/// scrape is a few kilobytes, so nothing needs more. The text is replaced
/// whole with `update(_:)` between scrapes.
final class MetricsServer: @unchecked Sendable {
    /// The address it listens on, with the port the kernel chose when 0 was asked for.
    let address: String
    private let fd: Int32
    private let lock = NSLock()
    private var body = ""
    private var stopped = false

    /// Listens on `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `:9464` for every address; port 0 picks one).
    init(listen spec: String) throws {
        let (host, port) = try Self.split(spec)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &res)
        guard rc == 0, let ai = res else {
            throw MetricsServerError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
        guard fd >= 0 else { throw MetricsServerError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("cannot listen on \(spec): \(reason) (is the port in use? pick another with --prometheus HOST:PORT)")
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) == 0 ? Self.port(of: $0) : nil }
        }
        self.fd = fd
        let shownHost = host.isEmpty ? "0.0.0.0" : (host.contains(":") ? "[\(host)]" : host)
        address = "\(shownHost):\(bound ?? port)"
        let thread = Thread { [self] in serve() }
        thread.name = "metrics"
        thread.start()
    }

    /// Replaces the exposition that scrapes get.
    func update(_ text: String) {
        lock.lock()
        body = text
        lock.unlock()
    }

    /// Stops accepting scrapes.
    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                lock.lock()
                let done = stopped
                lock.unlock()
                if done { close(fd); return }
                usleep(10_000)
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            answer(client)
            close(client)
        }
    }

    /// Reads the request head and writes one response.
    private func answer(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while head.count < 16384 {
            let n = read(client, &chunk, chunk.count)
            if n <= 0 { break }
            head += chunk[0..<n]
            // The head ends at an empty line (CRLF, or bare LF from lenient clients).
            let text = String(decoding: head, as: UTF8.self)
            if text.contains("\r\n\r\n") || text.contains("\n\n") { break }
        }
        let requestLine = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        let method = parts.first.map(String.init) ?? ""
        let path = parts.count > 1 ? String(parts[1].split(separator: "?").first ?? "") : ""
        let status: String
        let type: String
        let content: String
        if method != "GET" && method != "HEAD" {
            (status, type, content) = ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET\n")
        } else if path == "/metrics" {
            lock.lock()
            content = body
            lock.unlock()
            (status, type) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8")
        } else if path == "/" {
            (status, type, content) = ("200 OK", "text/plain; charset=utf-8", "syncamp: metrics at /metrics\n")
        } else {
            (status, type, content) = ("404 Not Found", "text/plain; charset=utf-8", "not found: try /metrics\n")
        }
        let bytes = Array(content.utf8)
        var response = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n"
        if method != "HEAD" { response += content }
        let out = Array(response.utf8)
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(client, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    /// "HOST:PORT" -> (host, port); "[::1]:PORT" for IPv6; ":PORT" for every address.
    static func split(_ spec: String) throws -> (String, Int) {
        guard let colon = spec.lastIndex(of: ":"), let port = Int(spec[spec.index(after: colon)...]), (0...65535).contains(port) else {
            throw MetricsServerError("--prometheus takes HOST:PORT (for example 127.0.0.1:9464 or :9464), not \(spec)")
        }
        var host = String(spec[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    private static func port(of addr: UnsafePointer<sockaddr>) -> Int? {
        switch Int32(addr.pointee.sa_family) {
        case AF_INET:
            return addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        case AF_INET6:
            return addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
        default:
            return nil
        }
    }
}

/// Why the metrics endpoint could not start: one sentence for the user.
struct MetricsServerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
