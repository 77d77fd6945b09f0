import Foundation

/// A disk as the guest sees it and as QEMU and libvirt call it.
///
/// From QEMU's own command line (`-blockdev` in JSON or key=value form, `-drive`,
/// `-device ...,drive=...,id=...`) and, for a libvirt domain, its XML (`<target dev='vda'/>`,
/// `<alias name='virtio-disk0'/>`).
public struct QemuDisk: Codable, Sendable, Equatable {
    /// The image file or block device (the protocol node's `filename`).
    public var path: String
    /// The guest device's `id` (`virtio-disk0`), from `-device ...,id=`.
    public var deviceID: String?
    /// The node names from the format node down (`libvirt-1-format`, `libvirt-1-storage`), or a `-drive`'s `id`.
    public var nodeNames: [String]
    /// The format driver of the top node (`qcow2`, `raw`), if given.
    public var format: String?
    /// libvirt's target, the name the guest sees (`vda`), from the domain XML.
    public var target: String?

    public init(path: String, deviceID: String? = nil, nodeNames: [String] = [], format: String? = nil, target: String? = nil) {
        self.path = path
        self.deviceID = deviceID
        self.nodeNames = nodeNames
        self.format = format
        self.target = target
    }

    /// How reports name it: "vda (virtio-disk0, libvirt-1-format)", or the path's file name.
    public var displayName: String {
        let qemu = ([deviceID] + nodeNames.prefix(1).map { Optional($0) }).compactMap { $0 }
        if let target { return qemu.isEmpty ? target : "\(target) (\(qemu.joined(separator: ", ")))" }
        return qemu.isEmpty ? URL(fileURLWithPath: path).lastPathComponent : qemu.joined(separator: ", ")
    }
}

/// The disks a QEMU command line defines (system/vl.c's -blockdev, -drive and -device options).
public enum QemuDisks {
    /// One block node: `-blockdev` or `-drive`.
    struct Node {
        var name: String
        var driver: String?
        var filename: String?
        /// The child node this one reads through (`file`), by name.
        var child: String?
    }

    /// Parses `command` (argv of qemu-system or qemu-io).
    public static func parse(_ command: [String]) -> [QemuDisk] {
        var nodes: [String: Node] = [:]
        var order: [String] = []
        var devices: [(drive: String, id: String?)] = []
        var driveIndex: [String: Int] = [:]
        var i = 0
        func add(_ n: Node) { if nodes[n.name] == nil { order.append(n.name) }; nodes[n.name] = n }
        while i < command.count {
            let opt = command[i].hasPrefix("--") ? String(command[i].dropFirst()) : command[i]
            let value = i + 1 < command.count ? command[i + 1] : ""
            switch opt {
            case "-blockdev":
                let o = options(value)
                if let name = o["node-name"] {
                    add(Node(name: name, driver: o["driver"], filename: o["filename"], child: o["file"]))
                    // an inline protocol child: file.filename=..., file.driver=...
                    if o["file"] == nil, let f = o["file.filename"] {
                        let childName = o["file.node-name"] ?? "\(name).file"
                        add(Node(name: childName, driver: o["file.driver"], filename: f, child: nil))
                        nodes[name]?.child = childName
                    }
                }
                i += 1
            case "-drive":
                let o = options(value)
                // QEMU's own default id for a -drive without one (blockdev.c: drive_new): the
                // interface and its index, "virtio0", "ide0-hd0".
                let interface = o["if"] ?? "ide"
                driveIndex[interface, default: 0] += 1
                let name = o["id"] ?? o["node-name"] ?? (interface == "virtio" || interface == "none"
                    ? "\(interface)\(driveIndex[interface]! - 1)" : "\(interface)0-hd\(driveIndex[interface]! - 1)")
                add(Node(name: name, driver: o["format"], filename: o["file"] ?? o["file.filename"], child: nil))
                i += 1
            case "-device":
                let o = options(value)
                if let drive = o["drive"] { devices.append((drive, o["id"])) }
                i += 1
            default:
                break
            }
            i += 1
        }
        // Top nodes: those no other node reads through.
        let children = Set(nodes.values.compactMap(\.child))
        var disks: [QemuDisk] = []
        for name in order where !children.contains(name) {
            var chain = [name]
            var node = nodes[name]
            var path = node?.filename
            while path == nil, let c = node?.child, !chain.contains(c), let next = nodes[c] {
                chain.append(c)
                node = next
                path = next.filename
            }
            guard let path else { continue }
            let device = devices.first { $0.drive == name }
            disks.append(QemuDisk(path: path, deviceID: device?.id ?? nil, nodeNames: chain, format: nodes[name]?.driver))
        }
        return disks
    }

    /// `key=value,key=value` (with `,,` for a comma) or a JSON object, flattened with dots.
    static func options(_ text: String) -> [String: String] {
        if text.hasPrefix("{"), let data = text.data(using: .utf8),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            var out: [String: String] = [:]
            func flatten(_ o: [String: Any], _ prefix: String) {
                for (k, v) in o {
                    if let d = v as? [String: Any] { flatten(d, prefix + k + ".") } else { out[prefix + k] = "\(v)" }
                }
            }
            flatten(object, "")
            return out
        }
        var out: [String: String] = [:]
        var parts: [String] = []
        var current = ""
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if c == "," {
                if chars.first == "," { current.append(","); chars = chars.dropFirst(); continue }
                parts.append(current); current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        for p in parts {
            if let eq = p.firstIndex(of: "=") { out[String(p[..<eq])] = String(p[p.index(after: eq)...]) }
        }
        return out
    }
}
