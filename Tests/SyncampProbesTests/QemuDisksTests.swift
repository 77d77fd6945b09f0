import SyncampProbes
import XCTest

/// Disk names from QEMU command lines of the shapes libvirt and people write.
final class QemuDisksTests: XCTestCase {
    /// What libvirt 9 writes for a qcow2 disk: two -blockdev JSON nodes and a -device naming the format node.
    func testLibvirtBlockdevJSON() {
        let argv = ["qemu-system-x86_64", "-name", "guest=g1",
                    "-blockdev", #"{"driver":"file","filename":"/var/lib/libvirt/images/g1.qcow2","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"}"#,
                    "-blockdev", #"{"node-name":"libvirt-1-format","read-only":false,"discard":"unmap","driver":"qcow2","file":"libvirt-1-storage"}"#,
                    "-device", #"{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x4","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1}"#,
                    "-device", "virtio-net-pci,netdev=hostnet0,id=net0"]
        let disks = QemuDisks.parse(argv)
        XCTAssertEqual(disks.count, 1)
        XCTAssertEqual(disks.first, QemuDisk(path: "/var/lib/libvirt/images/g1.qcow2", deviceID: "virtio-disk0",
                                             nodeNames: ["libvirt-1-format", "libvirt-1-storage"], format: "qcow2"))
        var named = disks[0]
        named.target = "vda"
        XCTAssertEqual(named.displayName, "vda (virtio-disk0, libvirt-1-format)")
    }

    /// key=value -blockdev and -device (older libvirt, hand-written lines), a ",," in a path.
    func testKeyValueBlockdevAndDrive() {
        let argv = ["qemu-system-x86_64",
                    "-blockdev", "driver=file,filename=/srv/a,,b.qcow2,node-name=store0",
                    "-blockdev", "driver=qcow2,file=store0,node-name=fmt0",
                    "-device", "virtio-blk-pci,drive=fmt0,id=disk-a",
                    "-drive", "file=/srv/c.raw,format=raw,if=none,id=drive1",
                    "-device", "virtio-blk-pci,drive=drive1",
                    "-drive", "file=/srv/d.qcow2,format=qcow2,if=virtio"]
        let disks = QemuDisks.parse(argv)
        XCTAssertEqual(disks.map(\.path), ["/srv/a,b.qcow2", "/srv/c.raw", "/srv/d.qcow2"])
        XCTAssertEqual(disks.map(\.deviceID), ["disk-a", nil, nil])
        XCTAssertEqual(disks.map(\.nodeNames), [["fmt0", "store0"], ["drive1"], ["virtio0"]])
        XCTAssertEqual(disks.map(\.format), ["qcow2", "raw", "qcow2"])
        XCTAssertEqual(disks[1].displayName, "drive1")
    }

    func testQemuIOHasNoDisks() {
        XCTAssertEqual(QemuDisks.parse(["qemu-io", "-f", "qcow2", "-t", "writeback", "-c", "flush", "img.qcow2"]), [])
    }
}
