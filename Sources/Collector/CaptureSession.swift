import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SyncampCapture

/// Runs one capture: drains the ring buffer into the capture file until the target exits, the duration ends or a signal arrives.
final class CaptureSession {
    let bpf: BPFSession
    let writer: CaptureWriter
    var target: Target
    let durationNs: UInt64?
    private var writeError: Error?
    private var perProbe: [Int: UInt64] = [:]
    private var lastLost: [UInt64] = []
    private var knownFDs: Set<UInt64> = []

    /// Probe ids of `raw_co_flush_to_disk` with the slot of the file node's fd among their derefs:
    /// with aio=io_uring no system call names the fd, so the fd a sync starts on is noted from here.
    var fdDerefSlots: [UInt16: Int] = [:]

    /// The parent whose exit ends the capture (`--stop-with-parent`: `analyzer live` started this collector).
    var parent: pid_t?

    /// Sleep between polls (a hidden test knob: a slow consumer makes a small ring buffer overflow for sure).
    var pollDelayMs: UInt32 = 0
    /// Consume events without writing them (bench/breakdown.sh measures the file writing apart).
    var discardEvents = false

    init(bpf: BPFSession, writer: CaptureWriter, target: Target, duration: Double?) {
        self.bpf = bpf
        self.writer = writer
        self.target = target
        self.durationNs = duration.map { UInt64($0 * 1e9) }
    }

    /// This process's CPU time so far, user + system (getrusage), in ns.
    static func cpuTimeNs() -> UInt64 {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
        return ns(u.ru_utime) + ns(u.ru_stime)
    }

    /// Polls until the capture should end, then writes the lost counts, a note and the trailer.
    func run() throws -> Trailer {
        let sink = EventSink { [unowned self] bytes in
            do {
                if discardEvents { return true }
                try writer.appendEvent(bytes)
                if bytes.count >= Event.size, let e = Event(bytes: bytes) {
                    if e.kind == .uprobe { perProbe[Int(e.probeID), default: 0] += 1 }
                    if e.kind == .syscallEnter { try noteFD(e.args[0], of: e) }
                    if e.kind == .uprobe, let slot = fdDerefSlots[e.probeID], e.hasDeref(slot) { try noteFD(e.derefs[slot], of: e) }
                }
                return true
            } catch {
                writeError = error
                return false
            }
        }
        try bpf.openRingBuffer(sink)
        let cpuAtStart = Self.cpuTimeNs()
        target.release()
        let start = CaptureClock.monotonicNs()
        var reason = ""
        var lastLostCheck = start
        while reason.isEmpty {
            bpf.poll(timeoutMs: 100)
            if pollDelayMs > 0 { usleep(pollDelayMs * 1000) }
            // Events are submitted without a wakeup until the ring is an eighth full, so a
            // poll that timed out still has to collect them; then they reach the file
            // within about 100 ms, for readers that follow it (`analyzer live`).
            bpf.consume()
            if let e = writeError { throw e }
            try writer.flush()
            let now = CaptureClock.monotonicNs()
            if StopSignal.received != 0 {
                reason = "signal"
            } else if let d = durationNs, now - start >= d {
                reason = "duration"
            } else if target.hasExited() {
                reason = "target-exited"
            } else if let p = parent, getppid() != p {
                reason = "parent-exited"
            }
            if now - lastLostCheck > 1_000_000_000 {
                try recordLost()
                lastLostCheck = now
            }
        }
        bpf.consume()
        if let e = writeError { throw e }
        try recordLost(force: true)
        let end = CaptureClock.monotonicNs()
        let message: String
        switch reason {
        case "signal": message = "stopped by signal \(StopSignal.received)"
        case "parent-exited": message = "the process that started the collector exited"
        case "duration": message = "stopped after the requested duration"
        default: message = "target process \(target.pid) exited"
        }
        try writer.appendNote(CaptureNote(timestampNs: end, kind: reason, message: message))
        let lost = lastLost.reduce(0, +)
        let programs = bpf.programRunTimes()
        let trailer = Trailer(events: writer.eventCount, lostEvents: lost, endMonotonicNs: end,
                              reason: reason, eventsPerProbe: perProbe,
                              bpfPrograms: programs, collectorCPUNs: programs.map { _ in Self.cpuTimeNs() - cpuAtStart })
        try writer.finish(trailer: trailer)
        return trailer
    }

    /// Records the file behind a synced fd the first time it is seen, for per-image totals.
    private func noteFD(_ value: UInt64, of e: Event) throws {
        let fd = value & 0xffff_ffff
        guard !knownFDs.contains(fd) else { return }
        knownFDs.insert(fd)
        let link = "/proc/\(e.pid)/fd/\(fd)"
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? "?"
        try writer.appendFDPath(FDPath(timestampNs: e.timestamp, fd: UInt32(fd), path: path))
    }

    /// Writes a lost-events record for each CPU whose count changed (or all at the end).
    private func recordLost(force: Bool = false) throws {
        let now = bpf.lostPerCPU()
        for (cpu, count) in now.enumerated() {
            let before = cpu < lastLost.count ? lastLost[cpu] : 0
            if count != before || (force && count > 0) {
                try writer.appendLost(cpu: UInt32(cpu), count: count)
            }
        }
        if !now.isEmpty { lastLost = now }
    }
}
