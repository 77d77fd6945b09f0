import Dispatch
import FlyingFox
import FlyingSocks
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The endpoint Prometheus scrapes: `GET /metrics` answers the latest exposition.
///
/// FlyingFox serves it (an HTTP/1.1 server on Swift concurrency and epoll, no SwiftNIO).
/// `live` and `replay` run synchronously, so this type bridges: it starts the server on a
/// task and waits until it listens (or says why it cannot), and `update(_:)` replaces the
/// exposition whole between scrapes, so every scrape shows one snapshot.
///
/// ```swift
/// let server = try MetricsServer(listen: "127.0.0.1:0")
/// server.update(PrometheusText.render(snapshot))
/// print(server.address)   // 127.0.0.1:40123
/// ```
final class MetricsServer: Sendable {
    /// The address it listens on, with the port the kernel chose when 0 was asked for.
    let address: String
    private let server: HTTPServer
    private let exposition: Exposition

    /// Listens on `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `:9464` for every address; port 0 picks one).
    init(listen spec: String) throws {
        let (host, port) = try Self.split(spec)
        let exposition = Exposition()
        let server = HTTPServer(address: try Self.resolve(host, port: port, spec: spec), timeout: 5,
                                logger: .disabled, handler: MetricsHandler(exposition: exposition))
        let failure = FailureBox()
        Task {
            do { try await server.run() } catch { failure.set(error) }
        }
        // Until it listens, or its run ended (the port is in use, say).
        let bound = try Self.blocking { () async throws -> Int? in
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if let error = failure.error {
                    throw MetricsServerError("cannot listen on \(spec): \(Self.reason(error)) (is the port in use? pick another with --prometheus HOST:PORT)")
                }
                if await server.isListening {
                    switch await server.listeningAddress {
                    case let .ip4(_, port), let .ip6(_, port): return Int(port)
                    default: return nil
                    }
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            throw MetricsServerError("cannot listen on \(spec): the server did not start within 5 s")
        }
        self.server = server
        self.exposition = exposition
        let shownHost = host.isEmpty ? "0.0.0.0" : (host.contains(":") ? "[\(host)]" : host)
        address = "\(shownHost):\(bound ?? port)"
    }

    /// Replaces the exposition that scrapes get.
    func update(_ text: String) {
        exposition.set(Data(text.utf8))
    }

    /// Stops accepting scrapes; the ones being answered finish.
    func stop() {
        let server = server
        _ = try? Self.blocking { await server.stop(timeout: 1) }
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

    /// The socket address to bind: every IPv4 address for an empty host, else the host's first
    /// address (a numeric address as it is, a name as the resolver gives it).
    private static func resolve(_ host: String, port: Int, spec: String) throws -> any SocketAddress {
        if host.isEmpty { return sockaddr_in.inet(port: UInt16(port)) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let ai = res else {
            throw MetricsServerError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        switch ai.pointee.ai_family {
        case AF_INET:
            return ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        case AF_INET6:
            return ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
        default:
            throw MetricsServerError("cannot listen on \(spec): \(host) is neither an IPv4 nor an IPv6 address")
        }
    }

    /// A socket error in a sentence ("Address already in use"), not FlyingFox's debug form.
    private static func reason(_ error: any Error) -> String {
        if case let .failed(_, _, message)? = error as? SocketError { return message }
        return "\(error)"
    }

    /// Runs `body` on Swift concurrency and waits for it on this (non-async) thread.
    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        return try box.get()
    }
}

/// Answers `/metrics` with the latest exposition, `/` with a pointer to it.
private struct MetricsHandler: HTTPHandler {
    let exposition: Exposition

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        let plain = "text/plain; charset=utf-8"
        let (status, type, body): (HTTPStatusCode, String, Data)
        if request.method != .GET && request.method != .HEAD {
            (status, type, body) = (.methodNotAllowed, plain, Data("only GET\n".utf8))
        } else if request.path == "/metrics" {
            (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", exposition.get())
        } else if request.path == "/" {
            (status, type, body) = (.ok, plain, Data("syncamp: metrics at /metrics\n".utf8))
        } else {
            (status, type, body) = (.notFound, plain, Data("not found: try /metrics\n".utf8))
        }
        guard request.method == .HEAD else { return HTTPResponse(statusCode: status, headers: [.contentType: type], body: body) }
        // The head alone, with the length the body would have.
        return HTTPResponse(statusCode: status, headers: [.contentType: type, .contentLength: String(body.count)])
    }
}

/// The exposition scrapes get, replaced whole under a lock.
private final class Exposition: @unchecked Sendable {
    private let lock = NSLock()
    private var body = Data()

    func set(_ data: Data) { lock.withLock { body = data } }
    func get() -> Data { lock.withLock { body } }
}

/// Why the server's run ended, if it did.
private final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?

    func set(_ e: any Error) { lock.withLock { stored = e } }
    var error: (any Error)? { lock.withLock { stored } }
}

/// A result handed from a task to the thread waiting for it.
private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?

    func set(_ r: Result<T, any Error>) { lock.withLock { result = r } }
    func get() throws -> T { try lock.withLock { result! }.get() }
}

/// Why the metrics endpoint could not start: one sentence for the user.
struct MetricsServerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
