import CBPF
import Foundation
import SyncampCapture

/// What this kernel offers syncamp's BPF programs, probed before the object is loaded.
///
/// As libbpf-tools do: BPF features through libbpf's probes (`libbpf_probe_bpf_map_type`,
/// `libbpf_probe_bpf_helper`), tracepoints through tracefs, record types through the
/// kernel's BTF and the BTF of the module a tracepoint belongs to (`/sys/kernel/btf/ext4`).
final class KernelSupport {
    /// `uname -r`.
    let release: String
    /// BPF ring buffer maps (Linux 5.8): every event goes through one.
    let hasRingBuffer: Bool
    /// `bpf_get_attach_cookie` in uprobe programs (Linux 5.15): tells the probes apart.
    let hasAttachCookie: Bool
    /// kprobes (CONFIG_KPROBES): the perf `kprobe` event source or tracefs' kprobe_events.
    let hasKprobes: Bool

    private let tracefs: String
    private var vmlinux: OpaquePointer?
    private var modules: [String: OpaquePointer?] = [:]

    init(tracefs: String = Preflight.tracefs) {
        self.tracefs = tracefs
        var u = utsname()
        uname(&u)
        release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        hasRingBuffer = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil) == 1
        hasAttachCookie = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie, nil) == 1
        hasKprobes = FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/kprobe/type")
            || FileManager.default.fileExists(atPath: tracefs + "/kprobe_events")
        vmlinux = btf__load_vmlinux_btf()
    }

    deinit {
        for case let btf? in modules.values { btf__free(btf) }
        if let vmlinux { btf__free(vmlinux) }
    }

    /// Throws, in one sentence naming the feature and the Linux version that has it, when this
    /// kernel lacks what every capture needs.
    func requireCore(functionProbes: Bool) throws {
        guard vmlinux != nil else { throw CollectorError.noBTF }
        guard hasRingBuffer else {
            throw CollectorError.kernelTooOld(release: release, feature: "the BPF ring buffer, which every event goes through", since: "5.8")
        }
        if functionProbes && !hasAttachCookie {
            throw CollectorError.kernelTooOld(release: release,
                                              feature: "BPF attach cookies for uprobes (bpf_get_attach_cookie), which tell syncamp's QEMU probes apart",
                                              since: "5.15")
        }
    }

    /// Why `hook` cannot load on this kernel, or nil when it can.
    func missing(_ hook: KernelHook) -> String? {
        switch hook.attach {
        case .syscallKprobe:
            return hasKprobes ? nil : "the kernel has no kprobes (CONFIG_KPROBES)"
        case let .tracepoint(category, event):
            guard FileManager.default.fileExists(atPath: "\(tracefs)/events/\(category)") else {
                let module = ["ext4", "jbd2", "xfs", "btrfs"].contains(category) ? " (is the \(category) module loaded?)" : ""
                return "the kernel has no \(category) tracepoints\(module)"
            }
            guard FileManager.default.fileExists(atPath: "\(tracefs)/events/\(category)/\(event)") else {
                return "the kernel has no tracepoint \(category):\(event)"
            }
            if let type = hook.recordType, !hasStruct(type, module: category) {
                return "the kernel's BTF has no \(type) for \(category):\(event)"
            }
            return nil
        }
    }

    /// Whether the kernel's BTF, or that of `module` when it is a loaded module, has `struct name`.
    private func hasStruct(_ name: String, module: String) -> Bool {
        if let v = vmlinux, btf__find_by_name_kind(v, name, UInt32(BTF_KIND_STRUCT)) >= 0 { return true }
        if modules[module] == nil {
            let loaded = FileManager.default.fileExists(atPath: "/sys/kernel/btf/\(module)") ? btf__load_module_btf(module, vmlinux) : nil
            modules[module] = .some(loaded)
        }
        guard let m = modules[module] ?? nil else { return false }
        return btf__find_by_name_kind(m, name, UInt32(BTF_KIND_STRUCT)) >= 0
    }
}
