import Foundation
import SyncampProbes

/// A libvirt domain's QEMU: its pid and its disks' names, from libvirt's run-time files.
///
/// libvirtd writes, for every running domain, `/run/libvirt/qemu/NAME.pid` (QEMU's pid) and
/// `/run/libvirt/qemu/NAME.xml` (the live domain XML, `<domstatus pid='...'>` around the
/// `<domain>`), whose `<disk>` elements name each disk's `<source file|dev>`, `<target dev>`
/// (`vda`, as the guest sees it) and `<alias name>` (`virtio-disk0`, QEMU's device id).
enum LibvirtDomain {
    static let runDirectory = "/run/libvirt/qemu"

    /// The QEMU pid of the running domain `name`.
    static func pid(of name: String, runDirectory dir: String = runDirectory) throws -> Int32 {
        let pidFile = "\(dir)/\(name).pid", xmlFile = "\(dir)/\(name).xml"
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return pid
        }
        if let xml = try? String(contentsOfFile: xmlFile, encoding: .utf8),
           let pid = attribute("pid", in: firstTag("domstatus", in: xml) ?? "").flatMap({ Int32($0) }) {
            return pid
        }
        throw CollectorError.usage("no running libvirt domain \(name): neither \(pidFile) nor \(xmlFile) gives its QEMU's pid; is it started (virsh list) on this host's system libvirtd?")
    }

    /// `<target dev>` and `<alias name>` by source path, from the domain's live XML (or its
    /// definition in /etc/libvirt/qemu), if found.
    static func disks(of name: String, runDirectory dir: String = runDirectory) -> [String: (target: String?, alias: String?)] {
        guard let xml = (try? String(contentsOfFile: "\(dir)/\(name).xml", encoding: .utf8))
                ?? (try? String(contentsOfFile: "/etc/libvirt/qemu/\(name).xml", encoding: .utf8)) else { return [:] }
        var out: [String: (String?, String?)] = [:]
        var rest = xml[...]
        while let start = rest.range(of: "<disk "), let end = rest[start.upperBound...].range(of: "</disk>") {
            let disk = String(rest[start.lowerBound ..< end.upperBound])
            rest = rest[end.upperBound...]
            guard let source = firstTag("source", in: disk),
                  let path = attribute("file", in: source) ?? attribute("dev", in: source) else { continue }
            out[path] = (firstTag("target", in: disk).flatMap { attribute("dev", in: $0) },
                         firstTag("alias", in: disk).flatMap { attribute("name", in: $0) })
        }
        return out
    }

    /// The first `<tag ...>` start tag's text.
    private static func firstTag(_ tag: String, in xml: String) -> String? {
        guard let r = xml.range(of: "<\(tag) ") ?? xml.range(of: "<\(tag)>"),
              let close = xml[r.lowerBound...].firstIndex(of: ">") else { return nil }
        return String(xml[r.lowerBound ... close])
    }

    /// `name='value'` or `name="value"` in a start tag, XML entities decoded.
    private static func attribute(_ name: String, in tag: String) -> String? {
        for quote in ["'", "\""] {
            if let r = tag.range(of: " \(name)=\(quote)"), let end = tag[r.upperBound...].firstIndex(of: Character(quote)) {
                return String(tag[r.upperBound ..< end]).replacingOccurrences(of: "&apos;", with: "'")
                    .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
                    .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
            }
        }
        return nil
    }
}
