import Foundation
import XCTest

/// A real guest: a Linux VM on the testbed's qemu-system-x86_64 doing fsync on virtio-blk qcow2 disks,
/// traced by pid while it runs, with strace counting the same window independently.
final class VMTests: XCTestCase {
    struct Run {
        var json: [String: Any]
        var guestFsyncs: Int
        var strace: Int
    }

    /// Boots the guest, attaches the collector and strace, lets the guest work, detaches, lets it go.
    /// `domain`: attach as `--domain NAME` through libvirt's run-time files, written for the VM in
    /// a folder of the test's (`NAME.pid`, and `NAME.xml` with the disks' targets), as libvirtd would.
    func traceVM(disks: [TestVM.Disk], workload: String, n: Int, dir: URL, qemu: String = TestVM.qemu,
                 domain: String? = nil) throws -> Run {
        let vm = try TestVM(disks: disks, workload: workload, n: n, qemu: qemu)
        defer { vm.finish() }
        _ = try vm.waitFor("SYNCAMP-READY")
        let capture = dir.appendingPathComponent("vm.syncamp").path
        var target = ["-p", String(vm.pid)]
        if let domain {
            let run = dir.appendingPathComponent("libvirt-run")
            try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
            try "\(vm.pid)\n".write(to: run.appendingPathComponent("\(domain).pid"), atomically: true, encoding: .utf8)
            let xmlDisks = disks.enumerated().map { n, d in
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(d.path)' index='\(n + 1)'/>"
                    + "<target dev='vd\(Character(UnicodeScalar(97 + n)!))' bus='virtio'/><alias name='\(d.id)'/></disk>"
            }.joined()
            try "<domstatus state='running' pid='\(vm.pid)'><domain type='kvm'><name>\(domain)</name><devices>\(xmlDisks)</devices></domain></domstatus>\n"
                .write(to: run.appendingPathComponent("\(domain).xml"), atomically: true, encoding: .utf8)
            target = ["--domain", domain, "--libvirt-run-dir", run.path]
        }
        let collector = try Background(Harness.collector, target + ["-o", capture])
        XCTAssertTrue(collector.waitFor("fdatasync/fsync traced"), collector.stderr)
        let log = dir.appendingPathComponent("strace.log").path
        let strace = try Background.straceSyncs(of: vm.pid, log: log)
        // The oracle must have run: strace still attached when the guest starts (a failed attach exits
        // at once), ended by our SIGINT and nothing else, its log there and holding the guest's syncs.
        XCTAssertTrue(strace.process.isRunning, "strace failed to attach: \(strace.stderr)")
        vm.send("go")
        let done = try vm.waitFor("SYNCAMP-DONE", timeout: 300)
        usleep(300_000)
        _ = strace.interrupt()
        XCTAssertEqual(strace.process.terminationReason, .uncaughtSignal, "strace exited on its own: \(strace.stderr)")
        XCTAssertEqual(strace.process.terminationStatus, SIGINT, "strace ended by something else than our SIGINT: \(strace.stderr)")
        XCTAssertEqual(collector.interrupt(), 0, "the collector detaches cleanly on SIGINT: \(collector.stderr)")
        XCTAssertTrue(vm.process.isRunning, "the guest keeps running after the collector detached")
        let fsyncs = Int(done.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "") ?? -1
        let straced = Harness.syncCalls(inStraceLog: try String(contentsOfFile: log, encoding: .utf8))
        XCTAssertGreaterThan(straced, 0, "strace saw none of the guest's syncs: it did not trace the window")
        return Run(json: try Harness.report(capture), guestFsyncs: fsyncs, strace: straced)
    }

    /// Workload (a): N x (4 KiB to a new cluster of the raw virtio disk + fsync).
    func testRawDiskAllocatingWritesWithFsync() throws {
        try TestVM.require()
        let dir = try Harness.tempDir(self)
        let disk = try Harness.makeImage(dir, name: "vm.qcow2")
        let r = try traceVM(disks: [.init(path: disk, id: "disk0")], workload: "raw-alloc", n: 8, dir: dir)
        XCTAssertEqual(r.guestFsyncs, 8)
        XCTAssertEqual(r.json.int("totals.guest_flushes"), r.guestFsyncs, "one virtio flush per guest fsync")
        XCTAssertGreaterThanOrEqual(r.json.int("totals.guest_writes") ?? 0, 8)
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace, "host syncs against strace over the same window")
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0)
        // The first allocating write + fsync pays for a new L2 table; then 2 per fsync (F2 + F1).
        XCTAssertEqual(r.json.int("totals.first_guest_flush_host_fdatasyncs"), 5)
        XCTAssertEqual((r.json.dict("totals")["steady_state_sync_amplification"] as? NSNumber)?.doubleValue, 2.0)
        XCTAssertEqual(r.json["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 8, "guest_flush": 8])
        let entries = Set(r.json.array("ops").compactMap { $0["entry"] as? String })
        XCTAssertTrue(entries.isSuperset(of: ["blk_aio_flush"]), "\(entries)")
        XCTAssertEqual(r.json.dict("target")["mode"] as? String, "attach")
    }

    /// Workload (a) on QEMU 10.0's system emulator: the same causes as on 7.2, the same count as strace.
    func testRawDiskAllocatingWritesOnQemu10() throws {
        try TestVM.require()
        try Harness.require(TestVM.qemu10, "QEMU 10.0's qemu-system-x86_64")
        let dir = try Harness.tempDir(self)
        let disk = try Harness.makeImage(dir, name: "vm.qcow2")
        let r = try traceVM(disks: [.init(path: disk, id: "disk0")], workload: "raw-alloc", n: 8, dir: dir, qemu: TestVM.qemu10)
        XCTAssertTrue((r.json.dict("target")["qemu_version"] as? String ?? "").hasPrefix("10.0."), "\(r.json.dict("target"))")
        XCTAssertEqual(r.guestFsyncs, 8)
        XCTAssertGreaterThan(r.strace, 0, "strace saw the guest's syncs")
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace, "host syncs against strace over the same window")
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(r.json["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 8, "guest_flush": 8])
    }

    /// A VM started with the command line libvirt writes (-blockdev JSON nodes, -device with an id),
    /// traced as a libvirt domain: the report names the disk as the guest sees it (vda), as QEMU
    /// calls its device and nodes, and keeps the path beside.
    func testLibvirtShapedVMByDomainName() throws {
        try TestVM.require()
        let dir = try Harness.tempDir(self)
        let disk = try Harness.makeImage(dir, name: "guest1.qcow2")
        let r = try traceVM(disks: [.init(path: disk, id: "virtio-disk0", libvirtShape: true)], workload: "raw-alloc", n: 4,
                            dir: dir, domain: "guest1")
        XCTAssertEqual(r.guestFsyncs, 4)
        XCTAssertGreaterThan(r.strace, 0)
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace)
        XCTAssertEqual(r.json["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 4, "guest_flush": 4])
        let images = r.json.array("images")
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images.first?["path"] as? String, disk)
        let named = images.first?["disk"] as? [String: Any] ?? [:]
        XCTAssertEqual(named["target"] as? String, "vda")
        XCTAssertEqual(named["device_id"] as? String, "virtio-disk0")
        XCTAssertEqual(named["node_names"] as? [String], ["libvirt-1-format", "libvirt-1-storage"])
        XCTAssertEqual(named["name"] as? String, "vda (virtio-disk0, libvirt-1-format)")
        let flushes = r.json.array("ops").filter { $0["kind"] as? String == "flush" }
        XCTAssertEqual(flushes.count, 4)
        XCTAssertTrue(flushes.allSatisfy { $0["disk"] as? String == "vda (virtio-disk0, libvirt-1-format)" })
    }

    /// Workload (c): overwrite the same 4 KiB + fsync: one host sync per guest fsync after the first.
    func testRawDiskOverwriteWithFsync() throws {
        try TestVM.require()
        let dir = try Harness.tempDir(self)
        let disk = try Harness.makeImage(dir, name: "vm.qcow2")
        let r = try traceVM(disks: [.init(path: disk, id: "disk0")], workload: "overwrite", n: 6, dir: dir)
        XCTAssertEqual(r.json.int("totals.guest_flushes"), 6)
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace)
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual((r.json.dict("totals")["steady_state_sync_amplification"] as? NSNumber)?.doubleValue, 1.0)
    }

    /// Workload (b): new files on ext4 inside the guest: the guest journal adds its own flushes,
    /// so QEMU sees more flush requests than the guest issued fsyncs.
    func testExt4InTheGuest() throws {
        try TestVM.require()
        let dir = try Harness.tempDir(self)
        let raw = dir.appendingPathComponent("fs.raw").path
        // No lazy inode-table or journal init: the guest kernel would write and flush those in the
        // background, and a flush outside the workload would land in one tracer's window and not the other's.
        XCTAssertEqual(try Harness.run("/sbin/mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", raw, "256M"]).status, 0)
        let disk = dir.appendingPathComponent("fs.qcow2").path
        XCTAssertEqual(try Harness.run(Harness.qemuImg, ["convert", "-O", "qcow2", raw, disk]).status, 0)
        let r = try traceVM(disks: [.init(path: disk, id: "disk0")], workload: "ext4", n: 6, dir: dir)
        XCTAssertEqual(r.guestFsyncs, 6)
        XCTAssertGreaterThan(r.json.int("totals.guest_flushes") ?? 0, r.guestFsyncs,
                             "ext4's journal commit sends flushes of its own")
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace)
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0)
    }

    /// Two virtio disks, one on an iothread: each disk's syncs are counted under its own image.
    func testTwoDisksOneOnAnIothread() throws {
        try TestVM.require()
        let dir = try Harness.tempDir(self)
        let a = try Harness.makeImage(dir, name: "a.qcow2")
        let b = try Harness.makeImage(dir, name: "b.qcow2")
        let r = try traceVM(disks: [.init(path: a, id: "disk0"), .init(path: b, id: "disk1", iothread: true)],
                            workload: "raw-alloc", n: 4, dir: dir)
        XCTAssertEqual(r.guestFsyncs, 8)
        XCTAssertEqual(r.json.int("totals.guest_flushes"), 8)
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.strace)
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0)
        let images = Dictionary(uniqueKeysWithValues: r.json.array("images").compactMap { i in
            (i["path"] as? String).map { ($0, i) }
        })
        for path in [a, b] {
            let image = try XCTUnwrap(images[path], "no totals for \(path): \(images.keys)")
            XCTAssertEqual(image["guest_flushes"] as? Int, 4, path)
            XCTAssertEqual(image["host_fdatasyncs"] as? Int, 3 + 4 * 2, path)
        }
    }
}
