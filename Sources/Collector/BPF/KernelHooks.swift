import SyncampCapture

/// One program of bpf/syncamp.bpf.c that hooks the kernel, and what it needs to load.
///
/// The collector checks these needs before loading (as libbpf-tools do with
/// `tracepoint_exists` and `bpf_core_type_exists`) and switches off the programs a
/// kernel cannot take, so one missing hook never stops the others.
struct KernelHook: Sendable {
    enum Attach: Sendable {
        /// A tracepoint, by tracefs category and event (`/sys/kernel/tracing/events/CATEGORY/EVENT`).
        case tracepoint(category: String, event: String)
        /// A kprobe or kretprobe on a system call (libbpf's `ksyscall`): needs CONFIG_KPROBES.
        case syscallKprobe(String)
    }

    /// The BPF program's name.
    var program: String
    var level: KernelLevel.Name
    var attach: Attach
    /// The tracepoint record type the program reads with CO-RE, looked up in the kernel's
    /// BTF and, for a tracepoint of a module (ext4, jbd2), in that module's BTF.
    var recordType: String?
    /// Programs that hook the same event on different kernels share a variant; the first
    /// whose needs this kernel meets is loaded and the others are switched off.
    var variant: String?
    /// The file system whose tracepoint this is (ext4 and jbd2, XFS, btrfs); nil for hooks every host uses.
    /// A level is traced when the hooks of the images' file systems are attached (KernelHookPlan).
    var fileSystem: FileSystemKind?

    /// "category:event" or "kprobe:syscall", as manifests and reports name hooks.
    var label: String {
        switch attach {
        case let .tracepoint(category, event): return "\(category):\(event)"
        case let .syscallKprobe(name): return "kprobe:\(name)"
        }
    }

    /// Whether it is a kprobe on a system call (the alternative to the syscalls tracepoints).
    var isSyscallKprobe: Bool {
        if case .syscallKprobe = attach { return true }
        return false
    }

    /// The hook's own name across variants: what a level needs.
    var need: String { variant ?? label }
}

/// Every kernel hook of bpf/syncamp.bpf.c, by level. Field layouts of the records
/// change between kernels; the variants and `bpf_core_field_exists` guards in the BPF
/// code cover 5.10 to 6.18 (checked against each kernel's tracefs format files in the
/// guest tests, Tests/EndToEndTests/KernelGuestTests.swift).
enum KernelHooks {
    static func tp(_ program: String, _ level: KernelLevel.Name, _ category: String, _ event: String,
                   _ record: String, variant: String? = nil, fs: FileSystemKind? = nil) -> KernelHook {
        KernelHook(program: program, level: level, attach: .tracepoint(category: category, event: event),
                   recordType: record, variant: variant, fileSystem: fs)
    }

    /// fdatasync/fsync through kprobes on the system calls: entry (fd) and return (value).
    static let syscallKprobes = [
        KernelHook(program: "syncamp_kp_fdatasync", level: .syncSyscalls, attach: .syscallKprobe("fdatasync")),
        KernelHook(program: "syncamp_krp_fdatasync", level: .syncSyscalls, attach: .syscallKprobe("fdatasync (return)")),
        KernelHook(program: "syncamp_kp_fsync", level: .syncSyscalls, attach: .syscallKprobe("fsync")),
        KernelHook(program: "syncamp_krp_fsync", level: .syncSyscalls, attach: .syscallKprobe("fsync (return)")),
    ]

    /// The same through the `syscalls` tracepoints (kernels without CONFIG_KPROBES).
    static let syscallTracepoints = [
        tp("syncamp_tp_enter_fdatasync", .syncSyscalls, "syscalls", "sys_enter_fdatasync", "trace_event_raw_sys_enter"),
        tp("syncamp_tp_exit_fdatasync", .syncSyscalls, "syscalls", "sys_exit_fdatasync", "trace_event_raw_sys_exit"),
        tp("syncamp_tp_enter_fsync", .syncSyscalls, "syscalls", "sys_enter_fsync", "trace_event_raw_sys_enter"),
        tp("syncamp_tp_exit_fsync", .syncSyscalls, "syscalls", "sys_exit_fsync", "trace_event_raw_sys_exit"),
    ]

    /// Below the system call: the file system's sync, the journal, the device, io_uring.
    /// ext4 syncs through jbd2; XFS's journal level is its log force; btrfs's is a transaction
    /// commit (an fsync usually writes its log tree instead, with no commit, and no tracepoint).
    static let storage = [
        tp("syncamp_fs_sync_enter", .fsSync, "ext4", "ext4_sync_file_enter", "trace_event_raw_ext4_sync_file_enter", fs: .ext4),
        tp("syncamp_fs_sync_exit", .fsSync, "ext4", "ext4_sync_file_exit", "trace_event_raw_ext4_sync_file_exit", fs: .ext4),
        tp("syncamp_xfs_fsync", .fsSync, "xfs", "xfs_file_fsync", "trace_event_raw_xfs_inode_class", fs: .xfs),
        tp("syncamp_btrfs_sync_file", .fsSync, "btrfs", "btrfs_sync_file", "trace_event_raw_btrfs_sync_file", fs: .btrfs),
        tp("syncamp_journal_start", .journal, "jbd2", "jbd2_start_commit", "trace_event_raw_jbd2_commit", fs: .ext4),
        tp("syncamp_journal_flushing", .journal, "jbd2", "jbd2_commit_flushing", "trace_event_raw_jbd2_commit", fs: .ext4),
        tp("syncamp_journal_end", .journal, "jbd2", "jbd2_end_commit", "trace_event_raw_jbd2_end_commit", fs: .ext4),
        tp("syncamp_journal_stats", .journal, "jbd2", "jbd2_run_stats", "trace_event_raw_jbd2_run_stats", fs: .ext4),
        tp("syncamp_xfs_log_force", .journal, "xfs", "xfs_log_force", "trace_event_raw_xfs_log_force", fs: .xfs),
        tp("syncamp_btrfs_commit", .journal, "btrfs", "btrfs_transaction_commit", "trace_event_raw_btrfs_transaction_commit", fs: .btrfs),
        tp("syncamp_device_issue", .device, "block", "block_rq_issue", "trace_event_raw_block_rq"),
        tp("syncamp_device_complete", .device, "block", "block_rq_complete", "trace_event_raw_block_rq_completion",
           variant: "block:block_rq_complete"),
        tp("syncamp_device_complete_own_type", .device, "block", "block_rq_complete", "trace_event_raw_block_rq_complete",
           variant: "block:block_rq_complete"),
        tp("syncamp_uring_submit", .ioUring, "io_uring", "io_uring_submit_req", "trace_event_raw_io_uring_submit_req",
           variant: "io_uring submit"),
        tp("syncamp_uring_submit_sqe", .ioUring, "io_uring", "io_uring_submit_sqe", "trace_event_raw_io_uring_submit_sqe",
           variant: "io_uring submit"),
        tp("syncamp_uring_complete", .ioUring, "io_uring", "io_uring_complete", "trace_event_raw_io_uring_complete"),
    ]

    static var all: [KernelHook] { syscallKprobes + syscallTracepoints + storage }

}
