import Foundation
import XCTest

/// A VM that libvirt itself starts: a transient domain on a private libvirtd (PrivateLibvirtd)
/// whose `<emulator>` is the testbed's QEMU 7.2, booting the test guest on a qcow2 disk `vda`.
/// `collector --domain NAME` and `analyzer live --domain NAME` find it as they would on a host
/// with libvirt, and name its disk from what libvirt really wrote (its command line and live XML).
final class LibvirtTests: XCTestCase {
    static let name = "syncamp-guest1"

    /// The domain: TCG (`type='qemu'`; `kvm` when SYNCAMP_VM_ACCEL=kvm, as TestVM), direct kernel
    /// boot of the test guest, one virtio qcow2 disk, no network, the serial console on a unix
    /// socket the test writes to, logged to a file the test reads.
    static func domainXML(image: String, console: URL, consoleLog: URL, workload: String, n: Int) -> String {
        let guest = TestVM.guest.path
        let type = ProcessInfo.processInfo.environment["SYNCAMP_VM_ACCEL"] == "kvm" ? "kvm" : "qemu"
        // -L: the guest's firmware folder (the testbed's QEMU is built without its blobs); libvirt
        // has no element for it, so it goes through qemu:commandline (the domain is marked tainted).
        return """
        <domain type='\(type)' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>\(name)</name>
          <memory unit='MiB'>256</memory>
          <vcpu>1</vcpu>
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
            <kernel>\(guest)/vmlinuz</kernel>
            <initrd>\(guest)/initrd.gz</initrd>
            <cmdline>console=ttyS0 quiet panic=-1 syncamp.workload=\(workload) syncamp.n=\(n) syncamp.disks=1</cmdline>
          </os>
          <features><acpi/></features>
          <on_poweroff>destroy</on_poweroff>
          <on_reboot>destroy</on_reboot>
          <on_crash>destroy</on_crash>
          <devices>
            <emulator>\(TestVM.qemu)</emulator>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='\(image)'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <controller type='usb' model='none'/>
            <serial type='unix'>
              <source mode='bind' path='\(console.path)'/>
              <log file='\(consoleLog.path)' append='off'/>
            </serial>
            <video><model type='none'/></video>
            <memballoon model='none'/>
          </devices>
          <qemu:commandline>
            <qemu:arg value='-L'/>
            <qemu:arg value='\(guest)/fw'/>
          </qemu:commandline>
        </domain>
        """
    }

    /// collector --domain on libvirt's QEMU while the guest writes 4 KiB to 4 new clusters of vda
    /// with an fsync after each; strace on the same QEMU over the same window is the independent
    /// count. `analyzer live --domain --prometheus` traces the same window beside it.
    func testCollectorAndLiveByDomainNameOnLibvirtsOwnVM() throws {
        try TestVM.require()
        try PrivateLibvirtd.require()
        try LiveEndToEndTests.requireParser()
        let dir = try Harness.tempDir(self)
        let libvirt = try PrivateLibvirtd(dir: dir.appendingPathComponent("libvirt"))
        defer { libvirt.stop() }
        let image = try Harness.makeImage(dir, name: "guest1.qcow2")
        let console = dir.appendingPathComponent("console.sock"), consoleLog = dir.appendingPathComponent("console.log")
        let xml = dir.appendingPathComponent("guest1.xml")
        try Self.domainXML(image: image, console: console, consoleLog: consoleLog, workload: "raw-alloc", n: 4)
            .write(to: xml, atomically: true, encoding: .utf8)

        let created = try libvirt.virsh(["create", xml.path])
        XCTAssertEqual(created.status, 0, "virsh create: \(created.stderr)\nlibvirtd: \(libvirt.messages.suffix(3000))")
        guard created.status == 0 else { return }
        // libvirt's own files for the running domain, as collector --domain reads them.
        let pidText = try String(contentsOf: libvirt.runFile("\(Self.name).pid"), encoding: .utf8)
        let qemuPid = try XCTUnwrap(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)), pidText)
        defer {
            // The guest powers off after its workload (scripts/guest/init.sh) and the domain then
            // ends by itself (<on_poweroff>destroy</on_poweroff>): a destroy that finds no domain
            // is fine once its QEMU is gone; any other failure is not.
            let destroyed = try? libvirt.virsh(["destroy", Self.name])
            let endedByItself = destroyed?.stderr.contains("Domain not found") == true && kill(qemuPid, 0) != 0
            XCTAssertTrue(destroyed?.status == 0 || endedByItself, "virsh destroy: \(destroyed?.stderr ?? "")")
            if kill(qemuPid, 0) == 0 { kill(qemuPid, SIGKILL) }  // only if libvirt could not
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(qemuPid)/exe"),
                       URL(fileURLWithPath: TestVM.qemu).resolvingSymlinksInPath().path, "libvirt's QEMU is the testbed's")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(qemuPid)/ns/mnt"),
                       try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(libvirt.pid)/ns/mnt"),
                       "the QEMU runs in the private libvirtd's namespace: that daemon started it")
        let liveXML = try String(contentsOf: libvirt.runFile("\(Self.name).xml"), encoding: .utf8)
        // What libvirt 9.0 writes for the disk (checked here so a libvirt that names it otherwise
        // says so, before the report's names are compared with these).
        for written in ["<domstatus state='running' reason='booted' pid='\(qemuPid)'>", "<target dev='vda' bus='virtio'/>",
                        "<alias name='virtio-disk0'/>", "<nodename type='storage' name='libvirt-1-storage'/>",
                        "<nodename type='format' name='libvirt-1-format'/>"] {
            XCTAssertTrue(liveXML.contains(written), "libvirt's live XML lacks \(written)")
        }
        try waitForLine("SYNCAMP-READY", in: consoleLog, timeout: 180)
        let guestInput = try UnixSocket(path: console.path)

        // The collector and analyzer live, each in libvirt's namespace as they would run on its host.
        let capture = dir.appendingPathComponent("guest1.syncamp").path
        let liveCapture = dir.appendingPathComponent("live.syncamp").path
        let seconds = 30
        let collector = try Background("/usr/bin/nsenter", libvirt.inNamespace(
            Harness.collector, ["--domain", Self.name, "-d", String(seconds), "-o", capture]))
        let liveErr = dir.appendingPathComponent("live.err").path
        FileManager.default.createFile(atPath: liveErr, contents: nil)
        let live = Process()
        live.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        live.arguments = libvirt.inNamespace(Harness.analyzer, ["live", "--domain", Self.name, "--prometheus", "127.0.0.1:0",
                                                                "--interval", "0.2", "-d", String(seconds), "--capture", liveCapture])
        live.standardOutput = FileHandle.nullDevice
        live.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: liveErr))
        try live.run()
        addTeardownBlock { if live.isRunning { live.interrupt(); live.waitUntilExit() } }
        XCTAssertTrue(collector.waitFor("fdatasync/fsync traced"), collector.stderr)
        let url = try LiveEndToEndTests.metricsAddress(live, errPath: liveErr, until: Date().addingTimeInterval(60))
        // live's collector writes the capture's manifest once its probes are attached.
        let attachBy = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: liveCapture) && live.isRunning && Date() < attachBy { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: liveCapture), "analyzer live did not attach: \(String(describing: try? String(contentsOfFile: liveErr, encoding: .utf8)))")

        let straceLog = dir.appendingPathComponent("strace.log").path
        let strace = try Background.straceSyncs(of: qemuPid, log: straceLog)
        XCTAssertTrue(strace.process.isRunning, "strace failed to attach: \(strace.stderr)")
        try guestInput.send("go\n")
        let done = try waitForLine("SYNCAMP-DONE", in: consoleLog, timeout: 120)
        usleep(300_000)
        _ = strace.interrupt()
        XCTAssertEqual(strace.process.terminationStatus, SIGINT, "strace ended by something else than our SIGINT: \(strace.stderr)")
        XCTAssertTrue(collector.process.isRunning, "the guest finished after the collector's \(seconds) s: raise -d")
        let straced = Harness.syncCalls(inStraceLog: try String(contentsOfFile: straceLog, encoding: .utf8))
        XCTAssertGreaterThan(straced, 0, "strace saw none of the guest's syncs: it did not trace the window")
        XCTAssertTrue(done.hasSuffix("fsyncs=4"), done)

        // A scrape once the 4 flushes have ended (a request counts 2 s after its last sync): the
        // disk label is libvirt's names, the counts those of the same window.
        let disk = "vda (virtio-disk0, libvirt-1-format)"
        var samples: [LiveEndToEndTests.Sample] = []
        let scrapeBy = Date().addingTimeInterval(15)
        repeat {
            samples = try LiveEndToEndTests.scrape(url) ?? []
            if samples.contains(where: { $0.name == "syncamp_image_guest_requests_total" && $0.labels["kind"] == "flush" && $0.value == 4 }) { break }
            usleep(250_000)
        } while Date() < scrapeBy && live.isRunning
        let flushes = samples.filter { $0.name == "syncamp_image_guest_requests_total" && $0.labels["kind"] == "flush" }
        XCTAssertEqual(flushes.map(\.labels), [["image": image, "disk": disk, "kind": "flush"]])
        XCTAssertEqual(flushes.first?.value, 4)
        let byCause = samples.filter { $0.name == "syncamp_host_syncs_by_cause_total" }
        XCTAssertTrue(byCause.allSatisfy { $0.labels["disk"] == disk && $0.labels["image"] == image }, "\(byCause)")
        XCTAssertEqual(Int(byCause.map(\.value).reduce(0, +)), straced, "live's host syncs by cause against strace")

        collector.process.waitUntilExit()
        XCTAssertEqual(collector.interrupt(), 0, "the collector ends after -d \(seconds): \(collector.stderr)")
        XCTAssertTrue(collector.stderr.contains("(duration)"), collector.stderr)
        live.waitUntilExit()
        XCTAssertEqual(live.terminationStatus, 0, (try? String(contentsOfFile: liveErr, encoding: .utf8)) ?? "")

        let r = try Harness.report(capture)
        let target = r.dict("target")
        XCTAssertEqual(target["pid"] as? Int, Int(qemuPid), "the target is libvirt's QEMU (its NAME.pid)")
        XCTAssertEqual(target["mode"] as? String, "attach")
        let command = target["command"] as? [String] ?? []
        XCTAssertTrue(command.contains("guest=\(Self.name),debug-threads=on"), "libvirt's command line: \(command)")
        XCTAssertEqual(r.int("totals.guest_flushes"), 4)
        XCTAssertGreaterThan(r.int("totals.host_fdatasyncs") ?? 0, 0)
        XCTAssertEqual(r.int("totals.host_fdatasyncs"), straced, "host syncs against strace over the same window")
        XCTAssertEqual(r.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(r["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 4, "guest_flush": 4])
        let images = r.array("images")
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images.first?["path"] as? String, image)
        let named = images.first?["disk"] as? [String: Any] ?? [:]
        XCTAssertEqual(named["target"] as? String, "vda")
        XCTAssertEqual(named["device_id"] as? String, "virtio-disk0")
        XCTAssertEqual(named["node_names"] as? [String], ["libvirt-1-format", "libvirt-1-storage"])
        XCTAssertEqual(named["name"] as? String, disk)
        let flushOps = r.array("ops").filter { $0["kind"] as? String == "flush" }
        XCTAssertEqual(flushOps.count, 4)
        XCTAssertTrue(flushOps.allSatisfy { $0["disk"] as? String == disk })
        let text = try Harness.run(Harness.analyzer, ["report", capture])
        XCTAssertTrue(text.stdout.contains("  domain   \(Self.name) (libvirt)\n"), text.stdout)
        XCTAssertTrue(text.stdout.contains("  disk     \(disk): \(image) (qcow2)\n"), text.stdout)
        print("libvirt domain \(Self.name), QEMU pid \(qemuPid): collector \(r.int("totals.host_fdatasyncs") ?? -1) host syncs, "
              + "strace \(straced), analyzer live \(Int(byCause.map(\.value).reduce(0, +))) (disk \(disk))")
        try? guestInput.send("bye\n")
    }

    /// Waits for a whole line containing `marker` in the console log and returns it (trimmed).
    @discardableResult
    func waitForLine(_ marker: String, in log: URL, timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(whereSeparator: \.isNewline).dropLast(text.last?.isNewline == true ? 0 : 1)
                .first(where: { $0.contains(marker) }) {
                return line.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            usleep(100_000)
        }
        throw TestVM.VMError(message: "no \(marker) from the guest within \(Int(timeout)) s; console:\n\(text.suffix(3000))")
    }
}
