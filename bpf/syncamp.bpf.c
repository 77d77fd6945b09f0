// SPDX-License-Identifier: GPL-2.0
/* syncamp.bpf.c: entry uprobes on QEMU's block layer and the fdatasync/fsync
 * system calls of one process, streamed through one ring buffer.
 *
 * No vmlinux.h: the few kernel structs read here are declared below with
 * preserve_access_index, so CO-RE relocates them against the kernel's BTF.
 */
/* Kernel pt_regs field names (di, si, ...) in bpf_tracing.h, as with vmlinux.h. */
#define __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "syncamp.h"

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
} __attribute__((preserve_access_index));

/* USDT argument specs and bpf_usdt_arg(): after struct pt_regs, which they read. */
#include <stdbool.h>
#include <bpf/usdt.bpf.h>

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
} __attribute__((preserve_access_index));

struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_struct thread;
} __attribute__((preserve_access_index));

/* Tracepoint records of the storage stack (fields as in tracefs' format files). */
struct trace_event_raw_ext4_sync_file_enter {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long ino;
	unsigned long parent;
	int datasync;
} __attribute__((preserve_access_index));

struct trace_event_raw_ext4_sync_file_exit {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long ino;
	int ret;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_commit {
	struct trace_entry ent;
	unsigned int dev;
	char sync_commit;
	unsigned int transaction;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_end_commit {
	struct trace_entry ent;
	unsigned int dev;
	char sync_commit;
	unsigned int transaction;
	unsigned int head;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_run_stats {
	struct trace_entry ent;
	unsigned int dev;
	unsigned int tid;
	unsigned long wait;
	unsigned long request_delay;
	unsigned long running;
	unsigned long locked;
	unsigned long flushing;
	unsigned long logging;
	unsigned int handle_count;
	unsigned int blocks;
	unsigned int blocks_logged;
} __attribute__((preserve_access_index));

/* XFS (built in or the xfs module): xfs_file_fsync is an event of the xfs_inode_class. */
struct trace_event_raw_xfs_inode_class {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long long ino;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_log_force {
	struct trace_entry ent;
	unsigned int dev;
	long long lsn;
	unsigned long caller_ip;
} __attribute__((preserve_access_index));

/* btrfs names its file system by fsid, not by device. */
struct trace_event_raw_btrfs_sync_file {
	struct trace_entry ent;
	unsigned char fsid[SYNCAMP_FSID_SIZE];
	unsigned long long ino;
	unsigned long long parent;
	int datasync;
} __attribute__((preserve_access_index));

struct trace_event_raw_btrfs_transaction_commit {
	struct trace_entry ent;
	unsigned char fsid[SYNCAMP_FSID_SIZE];
	unsigned long long generation;
} __attribute__((preserve_access_index));

struct trace_event_raw_block_rq {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long long sector;
	unsigned int nr_sector;
	unsigned int bytes;
	unsigned short ioprio;
	char rwbs[10];
} __attribute__((preserve_access_index));

struct trace_event_raw_block_rq_completion {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long long sector;
	unsigned int nr_sector;
	int error;
	unsigned short ioprio;
	char rwbs[10];
} __attribute__((preserve_access_index));

/* block_rq_complete before its event class was shared with block_rq_error (5.10): same fields. */
struct trace_event_raw_block_rq_complete {
	struct trace_entry ent;
	unsigned int dev;
	unsigned long long sector;
	unsigned int nr_sector;
	int error;
	char rwbs[8];
} __attribute__((preserve_access_index));

/* io_uring's submit event: io_uring_submit_req since 6.4, io_uring_submit_sqe before,
 * which has no `req` before 5.15. Fields that a kernel lacks are guarded with
 * bpf_core_field_exists; integers are read at the kernel's own size. */
struct trace_event_raw_io_uring_submit_req {
	struct trace_entry ent;
	void *ctx;
	void *req;
	unsigned long long user_data;
	unsigned char opcode;
} __attribute__((preserve_access_index));

struct trace_event_raw_io_uring_submit_sqe {
	struct trace_entry ent;
	void *ctx;
	void *req;
	unsigned long long user_data;
	unsigned char opcode;
} __attribute__((preserve_access_index));

/* io_uring_complete: `req` since 6.0, `res` a long before 5.15 and an int since. */
struct trace_event_raw_io_uring_complete {
	struct trace_entry ent;
	void *ctx;
	void *req;
	unsigned long long user_data;
	int res;
} __attribute__((preserve_access_index));

/* Reads an integer field of a tracepoint record at the size this kernel gives it. */
#define read_int_field(rec, field) ({							\
	long long __v = 0;								\
	unsigned int __sz = bpf_core_field_size(rec->field);				\
	const void *__p = (const void *)(rec) + bpf_core_field_offset(rec->field);	\
	if (__sz == 8)									\
		bpf_probe_read_kernel(&__v, 8, __p);					\
	else if (__sz == 4) {								\
		int __i = 0;								\
		bpf_probe_read_kernel(&__i, 4, __p);					\
		__v = __i;								\
	}										\
	__v;										\
})

/* Set by the collector before load. */
const volatile __u32 target_tgid = 0;
const volatile __u32 co_mode = SYNCAMP_CO_NONE;
/* Offset of QEMU's co_tls_current from the thread pointer (x86-64: fs base). */
const volatile long long co_tls_offset = 0;
/* Offset of `caller` in QEMU's struct Coroutine (include/qemu/coroutine_int.h: entry, entry_arg, caller). */
const volatile long long co_caller_offset = 16;
const volatile long long co_entry_arg_offset = 8;
/* Offset of `opaque` in BlockAIOCB (include/block/aio.h: aiocb_info, bs, cb, opaque). */
const volatile long long aiocb_opaque_offset = 24;
/* Parts of the uprobe program switched off, for bench/breakdown.sh only (enum syncamp_ablate). */
const volatile __u32 ablate = 0;
/* The ring buffer's size in bytes, as the collector sized it (one query less per event). */
const volatile __u64 ring_bytes = 0;

/* Devices whose journal commits and flush/FUA requests are recorded (the images' file systems). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SYNCAMP_MAX_DEVICES);
	__type(key, __u32);
	__type(value, __u8);
} watched_devs SEC(".maps");

/* btrfs file systems holding the images: fsid -> the watched device their events are put on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SYNCAMP_MAX_DEVICES);
	__type(key, struct syncamp_fsid);
	__type(value, __u32);
} watched_fsids SEC(".maps");

/* io_uring fsync requests of the target still in flight, to record their completion only.
 * Keyed by ring and user_data, which every kernel's submit and complete events carry. */
struct uring_key {
	__u64 ctx;
	__u64 user_data;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct uring_key);
	__type(value, __u8);
} uring_fsyncs SEC(".maps");

/* The running coroutine per thread, in SYNCAMP_CO_SWITCH mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} current_co SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the collector before load */
} events SEC(".maps");

/* Reservations that failed because the ring buffer was full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* What each uprobe reads through pointers, indexed by probe id (cookie). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYNCAMP_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct syncamp_probe_spec);
} probe_specs SEC(".maps");

static __always_inline struct syncamp_event *reserve_any(__u16 kind, __u16 probe_id);

/* Commits an event, waking the collector only once the ring buffer is an eighth
 * full. A wakeup per event costs the traced thread an inter-processor interrupt
 * to the collector's CPU (a VM exit on a virtual machine), dearer than the
 * event itself; the collector polls every 100 ms anyway, so at low rates an
 * event waits at most that long, and at high rates the wakeups come in batches. */
static __always_inline void submit_event(struct syncamp_event *e)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(e, avail >= ring_bytes / 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline struct syncamp_event *reserve(__u16 kind, __u16 probe_id)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return NULL;
	return reserve_any(kind, probe_id);
}

/* Reserves an event whatever thread runs (journal threads, block completions). */
static __always_inline struct syncamp_event *reserve_any(__u16 kind, __u16 probe_id)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syncamp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return NULL;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = kind;
	e->probe_id = probe_id;
	e->deref_ok = 0;
	e->reserved = 0;
	e->coroutine = 0;
	e->coroutine_caller = 0;
	e->coroutine_arg = 0;
	e->coroutine_opaque = 0;
	for (int i = 0; i < SYNCAMP_MAX_ARGS; i++)
		e->args[i] = 0;
	for (int i = 0; i < SYNCAMP_MAX_DEREFS; i++)
		e->derefs[i] = 0;
	return e;
}

static __always_inline int read_path(const struct syncamp_deref *d, __u64 *args, __u64 *out)
{
	__u32 a = d->arg;
	__u32 hops = d->hops;
	if (hops == 0 || hops > SYNCAMP_MAX_HOPS || a >= SYNCAMP_MAX_ARGS)
		return -1;
	__u64 p = args[a];
	for (__u32 h = 0; h + 1 < SYNCAMP_MAX_HOPS; h++) {
		if (h + 1 >= hops)
			break;
		__u64 next = 0;
		if (bpf_probe_read_user(&next, sizeof(next), (void *)(p + d->off[h])))
			return -1;
		p = next;
	}
	__u32 last = hops - 1;
	if (last >= SYNCAMP_MAX_HOPS)
		return -1;
	p += d->off[last];
	__u64 v = 0;
	__u32 size = d->size;
	if (size > 8)
		size = 8;
	if (size == 0)
		return -1;
	if (bpf_probe_read_user(&v, size, (void *)p))
		return -1;
	*out = v;
	return 0;
}

/* Reads the spec's pointer paths through the event's args. */
static __always_inline void read_derefs(struct syncamp_event *e, const struct syncamp_probe_spec *spec)
{
	for (int i = 0; i < SYNCAMP_MAX_DEREFS; i++) {
		__u64 v;
		if (read_path(&spec->derefs[i], e->args, &v) == 0) {
			e->derefs[i] = v;
			e->deref_ok |= 1u << i;
		}
	}
}

/* The coroutine running on this thread, or 0. */
static __always_inline __u64 running_coroutine(__u32 tid)
{
	__u64 co = 0;
	if (co_mode == SYNCAMP_CO_TLS) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		unsigned long fsbase = BPF_CORE_READ(task, thread.fsbase);
		if (fsbase)
			bpf_probe_read_user(&co, sizeof(co), (void *)(fsbase + co_tls_offset));
	} else if (co_mode == SYNCAMP_CO_SWITCH) {
		__u64 *p = bpf_map_lookup_elem(&current_co, &tid);
		if (p)
			co = *p;
	}
	return co;
}

/* qemu_coroutine_switch(from, to, action): remembers `to` as the thread's coroutine.
 * Emits nothing; attached only in SYNCAMP_CO_SWITCH mode (binaries without co_tls_current). */
SEC("uprobe")
int syncamp_co_switch(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)id;
	__u64 to = BPF_CORE_READ(ctx, si);
	bpf_map_update_elem(&current_co, &tid, &to, BPF_ANY);
	return 0;
}

/* The n-th integer argument register of the x86-64 calling convention, or 0. */
static __always_inline __u64 arg_register(struct pt_regs *ctx, __u32 n)
{
	switch (n) {
	case 0: return BPF_CORE_READ(ctx, di);
	case 1: return BPF_CORE_READ(ctx, si);
	case 2: return BPF_CORE_READ(ctx, dx);
	case 3: return BPF_CORE_READ(ctx, cx);
	case 4: return BPF_CORE_READ(ctx, r8);
	case 5: return BPF_CORE_READ(ctx, r9);
	default: return 0;
	}
}

SEC("uprobe")
int syncamp_uprobe(struct pt_regs *ctx)
{
	__u32 probe = (__u32)bpf_get_attach_cookie(ctx);
	if (ablate & SYNCAMP_ABLATE_OUTPUT)
		return 0;
	struct syncamp_event *e = reserve(SYNCAMP_EV_UPROBE, probe);
	if (!e)
		return 0;
	struct syncamp_probe_spec *spec = bpf_map_lookup_elem(&probe_specs, &probe);
	if (spec && spec->remap) {
		for (int i = 0; i < SYNCAMP_MAX_ARGS; i++)
			e->args[i] = arg_register(ctx, spec->arg_map[i]);
	} else {
		e->args[0] = BPF_CORE_READ(ctx, di);
		e->args[1] = BPF_CORE_READ(ctx, si);
		e->args[2] = BPF_CORE_READ(ctx, dx);
		e->args[3] = BPF_CORE_READ(ctx, cx);
		e->args[4] = BPF_CORE_READ(ctx, r8);
		e->args[5] = BPF_CORE_READ(ctx, r9);
	}
	e->coroutine = running_coroutine(e->tid);
	if (e->coroutine) {
		__u64 caller = 0;
		bpf_probe_read_user(&caller, sizeof(caller), (void *)(e->coroutine + co_caller_offset));
		e->coroutine_caller = caller;
		__u64 arg = 0, opaque = 0;
		if (bpf_probe_read_user(&arg, sizeof(arg), (void *)(e->coroutine + co_entry_arg_offset)) == 0 && arg) {
			e->coroutine_arg = arg;
			if (bpf_probe_read_user(&opaque, sizeof(opaque), (void *)(arg + aiocb_opaque_offset)) == 0)
				e->coroutine_opaque = opaque;
		}
	}
	if (spec && !(ablate & SYNCAMP_ABLATE_DEREFS))
		read_derefs(e, spec);
	submit_event(e);
	return 0;
}

/* A QEMU trace event compiled in as a USDT probe (dtrace trace backend): its
 * arguments are placed where the function it stands for has them, then read
 * through like a uprobe's. No coroutine: such binaries have no co_tls_current
 * symbol, and events that carry one name it in their arguments. */
SEC("usdt")
int syncamp_usdt(struct pt_regs *ctx)
{
	__u32 probe = (__u32)bpf_usdt_cookie(ctx);
	struct syncamp_event *e = reserve(SYNCAMP_EV_UPROBE, probe);
	if (!e)
		return 0;
	struct syncamp_probe_spec *spec = bpf_map_lookup_elem(&probe_specs, &probe);
	if (spec) {
		for (int i = 0; i < SYNCAMP_MAX_ARGS; i++) {
			long v = 0;
			__u32 n = spec->arg_map[i];
			if (n != SYNCAMP_NO_ARG && bpf_usdt_arg(ctx, n, &v) == 0)
				e->args[i] = (__u64)v;
		}
		read_derefs(e, spec);
	}
	submit_event(e);
	return 0;
}

/* File descriptors the target has synced: the first sync of each wakes the
 * collector at once, so that it reads the fd's path from /proc while the
 * target, blocked in that very sync, still has it open. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} seen_fds SEC(".maps");

static __always_inline int sys_enter(__u16 which, __u64 fd)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_SYSCALL_ENTER, which);
	if (!e)
		return 0;
	e->args[0] = fd;
	__u32 key = (__u32)fd;
	__u8 one = 1;
	if (!bpf_map_lookup_elem(&seen_fds, &key)) {
		bpf_map_update_elem(&seen_fds, &key, &one, BPF_ANY);
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
		return 0;
	}
	submit_event(e);
	return 0;
}

static __always_inline int sys_exit(__u16 which, long ret)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_SYSCALL_EXIT, which);
	if (!e)
		return 0;
	e->args[0] = (__u64)ret;
	submit_event(e);
	return 0;
}

/* Kernel side, preferred: kprobes on the syscalls (needs CONFIG_KPROBES). */
SEC("ksyscall/fdatasync")
int BPF_KSYSCALL(syncamp_kp_fdatasync, unsigned int fd) { return sys_enter(SYNCAMP_SYS_FDATASYNC, fd); }

SEC("kretsyscall/fdatasync")
int BPF_KRETPROBE(syncamp_krp_fdatasync, long ret) { return sys_exit(SYNCAMP_SYS_FDATASYNC, ret); }

SEC("ksyscall/fsync")
int BPF_KSYSCALL(syncamp_kp_fsync, unsigned int fd) { return sys_enter(SYNCAMP_SYS_FSYNC, fd); }

SEC("kretsyscall/fsync")
int BPF_KRETPROBE(syncamp_krp_fsync, long ret) { return sys_exit(SYNCAMP_SYS_FSYNC, ret); }

/* Kernel side, fallback: the syscalls tracepoints. */
SEC("tracepoint/syscalls/sys_enter_fdatasync")
int syncamp_tp_enter_fdatasync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(SYNCAMP_SYS_FDATASYNC, BPF_CORE_READ(ctx, args[0]));
}

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int syncamp_tp_exit_fdatasync(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(SYNCAMP_SYS_FDATASYNC, BPF_CORE_READ(ctx, ret));
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int syncamp_tp_enter_fsync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(SYNCAMP_SYS_FSYNC, BPF_CORE_READ(ctx, args[0]));
}

SEC("tracepoint/syscalls/sys_exit_fsync")
int syncamp_tp_exit_fsync(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(SYNCAMP_SYS_FSYNC, BPF_CORE_READ(ctx, ret));
}

/* Below QEMU: the file system, its journal and the device. */

/* A file-system sync on one of the target's threads (it nests under that thread's host sync). */
static __always_inline int fs_sync(__u16 fs, __u32 dev, __u64 ino, __u64 datasync)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_FS_SYNC_ENTER, fs);
	if (!e)
		return 0;
	e->args[0] = dev;
	e->args[1] = ino;
	e->args[2] = datasync;
	e->coroutine = running_coroutine(e->tid);
	submit_event(e);
	return 0;
}

SEC("tracepoint/ext4/ext4_sync_file_enter")
int syncamp_fs_sync_enter(struct trace_event_raw_ext4_sync_file_enter *ctx)
{
	return fs_sync(SYNCAMP_FS_EXT4, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, ino), BPF_CORE_READ(ctx, datasync));
}

SEC("tracepoint/xfs/xfs_file_fsync")
int syncamp_xfs_fsync(struct trace_event_raw_xfs_inode_class *ctx)
{
	return fs_sync(SYNCAMP_FS_XFS, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, ino), 2);
}

/* The device of a watched btrfs file system, or 0. */
static __always_inline __u32 btrfs_dev(const unsigned char *fsid_src)
{
	struct syncamp_fsid fsid = {};
	bpf_probe_read_kernel(&fsid, sizeof(fsid), fsid_src);
	__u32 *dev = bpf_map_lookup_elem(&watched_fsids, &fsid);
	return dev ? *dev : 0;
}

SEC("tracepoint/btrfs/btrfs_sync_file")
int syncamp_btrfs_sync_file(struct trace_event_raw_btrfs_sync_file *ctx)
{
	return fs_sync(SYNCAMP_FS_BTRFS, btrfs_dev(ctx->fsid), BPF_CORE_READ(ctx, ino), BPF_CORE_READ(ctx, datasync));
}

SEC("tracepoint/ext4/ext4_sync_file_exit")
int syncamp_fs_sync_exit(struct trace_event_raw_ext4_sync_file_exit *ctx)
{
	struct syncamp_event *e = reserve(SYNCAMP_EV_FS_SYNC_EXIT, 0);
	if (!e)
		return 0;
	e->args[0] = BPF_CORE_READ(ctx, dev);
	e->args[1] = BPF_CORE_READ(ctx, ino);
	e->args[2] = (__u64)(long)BPF_CORE_READ(ctx, ret);
	submit_event(e);
	return 0;
}

static __always_inline int watched(__u32 dev)
{
	return bpf_map_lookup_elem(&watched_devs, &dev) != NULL;
}

/* A journal event on a watched device, whatever thread runs it (jbd2's, a log worker, the syncing one). */
static __always_inline int journal_fs(__u16 kind, __u16 fs, unsigned int dev, __u64 a1, __u64 a2)
{
	if (!watched(dev))
		return 0;
	struct syncamp_event *e = reserve_any(kind, fs);
	if (!e)
		return 0;
	e->args[0] = dev;
	e->args[1] = a1;
	e->args[2] = a2;
	submit_event(e);
	return 0;
}

static __always_inline int journal(__u16 kind, unsigned int dev, unsigned int tid, char sync)
{
	return journal_fs(kind, SYNCAMP_FS_EXT4, dev, tid, sync);
}

/* XFS's journal is its log: a log force writes the log up to an lsn (0: all of it) and waits. */
SEC("tracepoint/xfs/xfs_log_force")
int syncamp_xfs_log_force(struct trace_event_raw_xfs_log_force *ctx)
{
	return journal_fs(SYNCAMP_EV_JOURNAL_START, SYNCAMP_FS_XFS, BPF_CORE_READ(ctx, dev),
			  (__u64)BPF_CORE_READ(ctx, lsn), BPF_CORE_READ(ctx, caller_ip));
}

/* A btrfs transaction commit, traced at its end (after its superblock writes). */
SEC("tracepoint/btrfs/btrfs_transaction_commit")
int syncamp_btrfs_commit(struct trace_event_raw_btrfs_transaction_commit *ctx)
{
	__u32 dev = btrfs_dev(ctx->fsid);
	if (!dev)
		return 0;
	return journal_fs(SYNCAMP_EV_JOURNAL_START, SYNCAMP_FS_BTRFS, dev, BPF_CORE_READ(ctx, generation), 0);
}

SEC("tracepoint/jbd2/jbd2_start_commit")
int syncamp_journal_start(struct trace_event_raw_jbd2_commit *ctx)
{
	return journal(SYNCAMP_EV_JOURNAL_START, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, transaction),
		       BPF_CORE_READ(ctx, sync_commit));
}

SEC("tracepoint/jbd2/jbd2_commit_flushing")
int syncamp_journal_flushing(struct trace_event_raw_jbd2_commit *ctx)
{
	return journal(SYNCAMP_EV_JOURNAL_FLUSHING, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, transaction),
		       BPF_CORE_READ(ctx, sync_commit));
}

SEC("tracepoint/jbd2/jbd2_end_commit")
int syncamp_journal_end(struct trace_event_raw_jbd2_end_commit *ctx)
{
	return journal(SYNCAMP_EV_JOURNAL_END, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, transaction),
		       BPF_CORE_READ(ctx, sync_commit));
}

SEC("tracepoint/jbd2/jbd2_run_stats")
int syncamp_journal_stats(struct trace_event_raw_jbd2_run_stats *ctx)
{
	unsigned int dev = BPF_CORE_READ(ctx, dev);
	if (!watched(dev))
		return 0;
	struct syncamp_event *e = reserve_any(SYNCAMP_EV_JOURNAL_STATS, 0);
	if (!e)
		return 0;
	e->args[0] = dev;
	e->args[1] = BPF_CORE_READ(ctx, tid);
	e->args[2] = BPF_CORE_READ(ctx, blocks);
	e->args[3] = BPF_CORE_READ(ctx, blocks_logged);
	e->args[4] = BPF_CORE_READ(ctx, handle_count);
	submit_event(e);
	return 0;
}

/* rwbs: a leading 'F' is a flush request, an 'F' after the operation letter is FUA. */
static __always_inline int device(__u16 kind, unsigned int dev, __u64 sector, unsigned int nr, __u64 extra, const char *rwbs_src)
{
	if (!watched(dev))
		return 0;
	char rwbs[8] = {};
	bpf_probe_read_kernel(rwbs, sizeof(rwbs), rwbs_src);
	int flagged = 0;
	for (int i = 0; i < 8; i++)
		if (rwbs[i] == 'F')
			flagged = 1;
	if (!flagged)
		return 0;
	struct syncamp_event *e = reserve_any(kind, 0);
	if (!e)
		return 0;
	e->args[0] = dev;
	e->args[1] = sector;
	e->args[2] = nr;
	e->args[3] = extra;
	__builtin_memcpy(&e->args[4], rwbs, 8);
	submit_event(e);
	return 0;
}

SEC("tracepoint/block/block_rq_issue")
int syncamp_device_issue(struct trace_event_raw_block_rq *ctx)
{
	return device(SYNCAMP_EV_DEVICE_ISSUE, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, sector),
		      BPF_CORE_READ(ctx, nr_sector), BPF_CORE_READ(ctx, bytes), ctx->rwbs);
}

SEC("tracepoint/block/block_rq_complete")
int syncamp_device_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	return device(SYNCAMP_EV_DEVICE_COMPLETE, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, sector),
		      BPF_CORE_READ(ctx, nr_sector), (__u64)(long)BPF_CORE_READ(ctx, error), ctx->rwbs);
}

/* The same tracepoint on kernels whose record type is still its own (5.10). */
SEC("tracepoint/block/block_rq_complete")
int syncamp_device_complete_own_type(struct trace_event_raw_block_rq_complete *ctx)
{
	return device(SYNCAMP_EV_DEVICE_COMPLETE, BPF_CORE_READ(ctx, dev), BPF_CORE_READ(ctx, sector),
		      BPF_CORE_READ(ctx, nr_sector), (__u64)(long)BPF_CORE_READ(ctx, error), ctx->rwbs);
}

/* io_uring rings whose first fsync was seen (by the ring's address, shifted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} seen_rings SEC(".maps");

/* An IORING_OP_FSYNC of the target entering io_uring; other opcodes are dropped. */
static __always_inline int uring_submit(__u64 ring, __u64 req, __u64 user_data, __u8 opcode)
{
	if (opcode != SYNCAMP_IORING_OP_FSYNC)
		return 0;
	struct syncamp_event *e = reserve(SYNCAMP_EV_URING_SUBMIT, 0);
	if (!e)
		return 0;
	struct uring_key key = { .ctx = ring, .user_data = user_data };
	__u8 one = 1;
	bpf_map_update_elem(&uring_fsyncs, &key, &one, BPF_ANY);
	e->args[0] = ring;
	e->args[1] = req;
	e->args[2] = user_data;
	e->args[3] = opcode;
	e->coroutine = running_coroutine(e->tid);
	/* The first fsync of a ring wakes the collector at once, as the first sync of an fd does
	 * (sys_enter): it notes the path behind the fd raw_co_flush_to_disk read just before,
	 * while the target still has it open. */
	__u32 ring_key = (__u32)(ring >> 4);
	if (!bpf_map_lookup_elem(&seen_rings, &ring_key)) {
		bpf_map_update_elem(&seen_rings, &ring_key, &one, BPF_ANY);
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
		return 0;
	}
	submit_event(e);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int syncamp_uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	return uring_submit((__u64)BPF_CORE_READ(ctx, ctx), (__u64)BPF_CORE_READ(ctx, req),
			    BPF_CORE_READ(ctx, user_data), BPF_CORE_READ(ctx, opcode));
}

/* Linux 5.10 to 6.3: the same event under its older name. */
SEC("tracepoint/io_uring/io_uring_submit_sqe")
int syncamp_uring_submit_sqe(struct trace_event_raw_io_uring_submit_sqe *ctx)
{
	__u64 req = 0;
	if (bpf_core_field_exists(ctx->req))
		req = (__u64)BPF_CORE_READ(ctx, req);
	return uring_submit((__u64)BPF_CORE_READ(ctx, ctx), req, BPF_CORE_READ(ctx, user_data), BPF_CORE_READ(ctx, opcode));
}

SEC("tracepoint/io_uring/io_uring_complete")
int syncamp_uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	struct uring_key key = { .ctx = (__u64)BPF_CORE_READ(ctx, ctx), .user_data = BPF_CORE_READ(ctx, user_data) };
	if (!bpf_map_lookup_elem(&uring_fsyncs, &key))
		return 0;
	bpf_map_delete_elem(&uring_fsyncs, &key);
	struct syncamp_event *e = reserve_any(SYNCAMP_EV_URING_COMPLETE, 0);
	if (!e)
		return 0;
	e->args[0] = key.ctx;
	if (bpf_core_field_exists(ctx->req))
		e->args[1] = (__u64)BPF_CORE_READ(ctx, req);
	e->args[2] = key.user_data;
	e->args[3] = (__u64)read_int_field(ctx, res);
	submit_event(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
